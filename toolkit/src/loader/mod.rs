//! Loading a project's API definitions into one validated gateway model.
//!
//! Every check that can fail a build runs here, before any code is generated: parse errors,
//! unresolved references, invalid URLs, resources without endpoints, duplicate base paths and
//! routes that conflict. All problems are collected and reported together.

pub mod cors;
pub mod diagnostics;
pub mod document;
pub mod endpoints;
pub mod express_gateway;
pub mod openapi;
pub mod pipelines;
pub mod refs;
pub mod schemas;
pub mod security;
pub mod throttling;
pub mod validation;

use std::collections::BTreeMap;

use mgw_runtime::model::express::{ExpressGateway, PathPattern};
use mgw_runtime::model::{GatewayModel, PolicySpec, MODEL_FORMAT};
use mgw_runtime::policies::cors::CorsSpec;
use mgw_runtime::policies::proxy::EndpointChoice;
use mgw_runtime::policies::throttling::{ThrottleSpec, TierLevel, UNAUTHENTICATED, UNLIMITED};
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

/// A project's Express Gateway configuration (`express-gateway/` in the project).
#[derive(Debug, Clone)]
pub struct ExpressSource {
    /// `gateway.config.yml` (or `.json`).
    pub gateway: SourceFile,
    /// `system.config.yml`, when the project has one.
    pub system: Option<SourceFile>,
}

/// The WSO2 listeners' ports of `conf/micro-gw.toml`, for the build's check that an Express
/// Gateway listener sharing one of them has no route that could take a WSO2 API's requests.
#[derive(Debug, Clone, Default)]
pub struct ConfPorts {
    /// The settings file, as shown in messages.
    pub file: String,
    /// `[listener] http_port` and its line (`None`: the default), when HTTP is enabled.
    pub http: Option<(u16, Option<usize>)>,
    /// `[listener] https_port` and its line, when HTTPS is enabled.
    pub https: Option<(u16, Option<usize>)>,
    /// `[express_gateway] http_port`, replacing the Express Gateway file's.
    pub express_http: Option<u16>,
    /// `[express_gateway] https_port`.
    pub express_https: Option<u16>,
}

/// What the build allows and knows beyond the definitions.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `--allow-unsupported`.
    pub allow_unsupported: bool,
    /// The WSO2 listeners' ports, when the settings file could be read.
    pub ports: Option<ConfPorts>,
    /// The CORS step of WSO2 APIs without `x-wso2-cors` (`[cors]` of `conf/micro-gw.toml`
    /// when enabled).
    pub cors_default: Option<CorsSpec>,
    /// The project's `policies.yaml` (throttling tiers), when it has one.
    pub policies: Option<SourceFile>,
    /// `[validation]` of `conf/micro-gw.toml`: whether resources validate requests and
    /// responses unless `x-mgw-validation` says otherwise.
    pub validation: validation::ValidationDefault,
}

/// A validated model and the warnings found on the way.
#[derive(Debug)]
pub struct Loaded {
    /// The model to compile in.
    pub model: GatewayModel,
    /// Warnings to show the user.
    pub warnings: Vec<Diagnostic>,
    /// Steps of policies this version cannot run yet, kept with a stated behaviour
    /// (only with [`LoadOptions::allow_unsupported`]; otherwise they are errors).
    pub unsupported: Vec<express_gateway::UnsupportedStep>,
    /// `db.redis` of the Express Gateway system configuration, as `[store]` keys (written
    /// into the project's settings by `import --system-config`).
    pub store: Option<express_gateway::StoreMapping>,
}

/// Loading failed; warnings are kept so they can still be shown.
#[derive(Debug)]
pub struct Failed {
    /// The errors.
    pub error: LoadError,
    /// Warnings found before giving up.
    pub warnings: Vec<Diagnostic>,
}

/// Loads and validates a set of definition files as one gateway, with default options.
pub fn load(project: &str, files: &[SourceFile]) -> Result<Loaded, Failed> {
    load_project(project, files, None, &LoadOptions::default())
}

/// Loads and validates a project: its definition files and its Express Gateway configuration
/// (translated by [`express_gateway::translate`]) as one gateway.
pub fn load_project(
    project: &str,
    files: &[SourceFile],
    express: Option<&ExpressSource>,
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
    // The Express Gateway configuration, translated into a model of its own and merged below.
    let mut eg_model = GatewayModel {
        format: MODEL_FORMAT,
        project: project.to_string(),
        apis: Vec::new(),
        endpoints: Vec::new(),
        pipelines: Vec::new(),
        express: Vec::new(),
    };
    let mut unsupported = Vec::new();
    let mut eg_port_lines: Vec<Option<usize>> = Vec::new();
    let mut system_settings = express_gateway::SystemSettings::default();
    if let Some(express) = express {
        if let Some(system) = &express.system {
            match express_gateway::parse(&system.name, &system.text) {
                Ok(doc) => {
                    let base = std::path::Path::new(&system.name)
                        .parent()
                        .and_then(|p| std::path::absolute(p).ok());
                    system_settings =
                        express_gateway::system_config(&doc, &mut diags, base.as_deref())
                }
                Err(err) => diags.parse_error(
                    &system.name,
                    err.line,
                    err.column,
                    format!("{}; fix the syntax", err.message),
                ),
            }
        }
        match express_gateway::parse(&express.gateway.name, &express.gateway.text) {
            Ok(doc) => {
                let eg_options = express_gateway::Options {
                    allow_unsupported: options.allow_unsupported,
                };
                unsupported =
                    express_gateway::translate(&doc, &mut eg_model, &mut diags, &eg_options);
                if let Some(config) = eg_model.express.last_mut() {
                    config.healthcheck = system_settings.healthcheck.clone();
                    config.metrics_path = system_settings.metrics_path.clone();
                    config.storage = system_settings.storage.clone();
                    if config.storage.is_some() && config.admin.is_none() {
                        diags.warn(
                            &express.gateway.name,
                            None,
                            "the storage plugin's route lives on the admin listener, and this configuration has no `admin`: the route is not served",
                        );
                    }
                }
                eg_port_lines = vec![doc.line("/http/port"), doc.line("/https/port")];
            }
            Err(err) => diags.parse_error(
                &express.gateway.name,
                err.line,
                err.column,
                format!("{}; fix the syntax", err.message),
            ),
        }
    }
    let policies = options
        .policies
        .as_ref()
        .map(|file| (file.name.clone(), throttling::parse(file, &mut diags)));
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
            let validate = validation::api_validation(&doc, &api, options.validation, &mut diags);
            apis.push((
                api,
                (cors.or_else(|| options.cors_default.clone()), validate),
            ));
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
    let mut throttles = Vec::with_capacity(apis.len());
    let mut validations = Vec::with_capacity(apis.len());
    for (loaded, (api_cors, validate)) in apis {
        cors.push(api_cors);
        validations.push(validate);
        throttles.push(throttle_specs(&loaded, policies.as_ref(), &mut diags));
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
    if !diags.is_ok() {
        return Err(failed(diags));
    }
    pipelines::compile_wso2(&mut model, &cors, &throttles, &validations);
    merge_express(&mut model, eg_model);
    if let (Some(ports), Some(express)) = (&options.ports, express) {
        for eg in &model.express {
            mixed_conflicts(
                &model,
                eg,
                ports,
                &express.gateway.name,
                &eg_port_lines,
                &mut diags,
            );
        }
        if !diags.is_ok() {
            return Err(failed(diags));
        }
    }
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
        unsupported,
        store: system_settings.store,
    })
}

/// Appends an Express Gateway model (its own endpoint and pipeline indices from 0) to `model`,
/// shifting its indices.
fn merge_express(model: &mut GatewayModel, eg: GatewayModel) {
    let endpoint_offset = model.endpoints.len();
    let pipeline_offset = model.pipelines.len();
    model.endpoints.extend(eg.endpoints);
    for mut pipeline in eg.pipelines {
        for step in &mut pipeline.steps {
            if let PolicySpec::Proxy(proxy) = &mut step.policy {
                if let EndpointChoice::Service { endpoint } = &mut proxy.endpoint {
                    *endpoint += endpoint_offset;
                }
            }
        }
        model.pipelines.push(pipeline);
    }
    for mut express in eg.express {
        for route in &mut express.routes {
            route.pipeline = route.pipeline.map(|p| p + pipeline_offset);
        }
        model.express.push(express);
    }
}

/// True when an Express Gateway route path could match a request path at or under a WSO2 base
/// path (both compared case-insensitively, as Express does; a `pathRegex` may match anything).
pub fn could_overlap(path: &PathPattern, base_path: &str) -> bool {
    let PathPattern::Express(path) = path else {
        return true;
    };
    let path = path.to_ascii_lowercase();
    let base = base_path.to_ascii_lowercase();
    let base = base.trim_end_matches('/');
    if base.is_empty() || path == "*" {
        return true;
    }
    let literal_end = path.find(['*', ':', '(', '?', '+']).unwrap_or(path.len());
    let literal = &path[..literal_end];
    let wild = literal_end < path.len();
    // The route's fixed part is the base path or lies under it.
    if literal.trim_end_matches('/') == base || literal.starts_with(&format!("{base}/")) {
        return true;
    }
    // A wildcard right after a prefix of the base path reaches into it (`/pe*` covers `/pets`).
    wild && base.starts_with(literal)
}

fn mixed_conflicts(
    model: &GatewayModel,
    eg: &ExpressGateway,
    ports: &ConfPorts,
    eg_file: &str,
    eg_lines: &[Option<usize>],
    diags: &mut Diagnostics,
) {
    use mgw_runtime::env_template::default_value;
    let eg_port = |listen: &mgw_runtime::model::express::Listen, over: Option<u16>| {
        over.or_else(|| default_value(&listen.port)?.trim().parse().ok())
    };
    let listeners = [
        (
            "http",
            eg.http
                .as_ref()
                .and_then(|l| eg_port(l, ports.express_http)),
            eg_lines.first().copied().flatten(),
            false,
        ),
        (
            "https",
            eg.https
                .as_ref()
                .and_then(|l| eg_port(&l.listen, ports.express_https)),
            eg_lines.get(1).copied().flatten(),
            true,
        ),
    ];
    let conf_at = |line: Option<usize>, key: &str, port: u16| match line {
        Some(line) => format!("{}:{line}", ports.file),
        None => format!("{} (default {key} = {port})", ports.file),
    };
    for (what, port, line, tls) in listeners {
        let Some(port) = port.filter(|p| *p != 0) else {
            continue;
        };
        for (conf_key, conf, conf_tls) in [
            ("http_port", ports.http, false),
            ("https_port", ports.https, true),
        ] {
            let Some((conf_port, conf_line)) = conf else {
                continue;
            };
            if conf_port != port {
                continue;
            }
            if tls != conf_tls {
                diags.error(
                    eg_file,
                    line,
                    format!(
                        "{what}.port {port} is also the WSO2 {} port ({}): one port cannot serve plain HTTP and TLS; give the Express Gateway listener another port (or set [express_gateway] {what}_port in {})",
                        if conf_tls { "HTTPS" } else { "HTTP" },
                        conf_at(conf_line, conf_key, conf_port),
                        ports.file
                    ),
                );
                continue;
            }
            for route in &eg.routes {
                if let Some(api) = model
                    .apis
                    .iter()
                    .find(|api| could_overlap(&route.path, &api.base_path))
                {
                    let shown = match &route.path {
                        PathPattern::Express(p) => p.clone(),
                        PathPattern::Regex(r) => format!("pathRegex {r}"),
                    };
                    diags.error(
                        eg_file,
                        line,
                        format!(
                            "{what}.port {port} is also the WSO2 port of {}, and the route {shown} of API endpoint '{}' could take requests for the API '{}' (base path {}, {}); give the Express Gateway listener another port, or change the path or the base path",
                            conf_at(conf_line, conf_key, conf_port),
                            route.api_endpoint,
                            api.name,
                            api.base_path,
                            api.source
                        ),
                    );
                }
            }
        }
    }
}

/// The `throttle` step of each resource of `loaded` (none when nothing is to be counted). A tier
/// that `policies.yaml` does not define is an error naming the file, the API and the tier.
fn throttle_specs(
    loaded: &openapi::LoadedApi,
    policies: Option<&(String, throttling::Policies)>,
    diags: &mut Diagnostics,
) -> Vec<Option<ThrottleSpec>> {
    let api = &loaded.api;
    let Some((policies_file, policies)) = policies else {
        let named = loaded
            .api_tier
            .iter()
            .chain(loaded.tiers.iter().flatten())
            .find(|(name, _)| name != UNLIMITED);
        if let Some((name, line)) = named {
            diags.warn(
                &api.source,
                *line,
                format!(
                    "throttling tier '{name}' is not applied: the project has no policies.yaml"
                ),
            );
        }
        return vec![None; api.resources.len()];
    };
    let mut specs = Vec::with_capacity(api.resources.len());
    for (i, resource) in api.resources.iter().enumerate() {
        let own = loaded.tiers.get(i).cloned().flatten();
        // An API-level tier wins over a resource's, as in WSO2 (one counter for the API).
        let named = match (&loaded.api_tier, own) {
            (Some((name, line)), _) if name != UNLIMITED => {
                Some((TierLevel::Api, name.clone(), *line))
            }
            (_, Some((name, line))) if name != UNLIMITED => Some((TierLevel::Resource, name, line)),
            _ => None,
        };
        let tier = match named {
            None => None,
            Some((level, name, line)) => match policies.resource.iter().find(|t| t.name == name) {
                Some(tier) => Some((level, tier.clone())),
                None => {
                    let elsewhere = if policies
                        .subscription
                        .iter()
                        .chain(&policies.application)
                        .any(|t| t.name == name)
                    {
                        " (it is an application or subscription policy; x-wso2-throttling-tier names resourcePolicies)"
                    } else {
                        ""
                    };
                    let defined: Vec<&str> =
                        policies.resource.iter().map(|t| t.name.as_str()).collect();
                    diags.error(
                            &api.source,
                            line,
                            format!(
                                "API '{}' {}: throttling tier '{name}' is not a resource policy of {policies_file}{elsewhere}; defined: {}",
                                api.name,
                                api.version,
                                if defined.is_empty() { "none".to_string() } else { defined.join(", ") }
                            ),
                        );
                    None
                }
            },
        };
        let unsecured = resource.security.is_none();
        let counts_subscriptions = if unsecured {
            policies
                .subscription
                .iter()
                .any(|t| t.name == UNAUTHENTICATED)
        } else {
            !policies.subscription.is_empty() || !policies.application.is_empty()
        };
        if tier.is_none() && !counts_subscriptions {
            specs.push(None);
            continue;
        }
        specs.push(Some(ThrottleSpec {
            tier,
            api_key: format!("{}:{}", api.base_path, api.version),
            resource_key: format!(
                "{}/{}{}:{}",
                api.base_path, api.version, resource.path, resource.method
            ),
            api_name: api.name.clone(),
            api_version: api.version.clone(),
            applications: if unsecured {
                Vec::new()
            } else {
                policies.application.clone()
            },
            subscriptions: if unsecured {
                policies
                    .subscription
                    .iter()
                    .filter(|t| t.name == UNAUTHENTICATED)
                    .cloned()
                    .collect()
            } else {
                policies.subscription.clone()
            },
            unsecured,
        }));
    }
    specs
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

    fn throttle_of(loaded: &Loaded, api: usize, resource: usize) -> Option<ThrottleSpec> {
        let r = &loaded.model.apis[api].resources[resource];
        let steps = &loaded.model.pipelines[r.pipeline].steps;
        let names: Vec<&str> = steps.iter().map(|s| s.policy.name()).collect();
        steps.iter().find_map(|s| match &s.policy {
            PolicySpec::Throttle(t) => {
                // Right after authenticate (or first when unsecured), before the proxy.
                assert_eq!(names.last(), Some(&"proxy"), "{names:?}");
                Some(t.clone())
            }
            _ => None,
        })
    }

    #[test]
    fn tiers_become_throttle_steps_and_unknown_tiers_fail_the_build() {
        let policies = SourceFile {
            name: "policies.yaml".into(),
            text: "resourcePolicies:\n  - 3PerMin: {count: 3, unitTime: 1, timeUnit: min}\nsubscriptionPolicies:\n  - Gold: {count: 9, timeUnit: min}\n  - Unauthenticated: {count: 5, timeUnit: min}\n".into(),
        };
        let options = LoadOptions {
            policies: Some(policies),
            ..Default::default()
        };
        let mut api_level = file("a.yaml", "/a", "  /x: {get: {x-wso2-throttling-tier: Unlimited}}\n  /y: {get: {x-wso2-disable-security: true}}\n");
        api_level.text = api_level
            .text
            .replace("paths:", "x-throttling-tier: 3PerMin\npaths:");
        let resource_level = file(
            "b.yaml",
            "/b",
            "  /x: {get: {x-wso2-throttling-tier: 3PerMin}}\n  /y: {get: {}}\n",
        );
        let loaded = load_project("p", &[api_level, resource_level], None, &options).unwrap();
        let a_x = throttle_of(&loaded, 0, 0).unwrap();
        assert_eq!(
            a_x.tier.as_ref().map(|(l, t)| (*l, t.count)),
            Some((TierLevel::Api, 3))
        );
        assert_eq!(a_x.api_key, "/a:1");
        assert_eq!(a_x.subscriptions.len(), 2);
        let a_y = throttle_of(&loaded, 0, 1).unwrap();
        assert!(a_y.unsecured);
        assert_eq!(
            a_y.subscriptions
                .iter()
                .map(|t| t.name.as_str())
                .collect::<Vec<_>>(),
            ["Unauthenticated"]
        );
        let b_x = throttle_of(&loaded, 1, 0).unwrap();
        assert_eq!(
            b_x.tier.as_ref().map(|(l, _)| *l),
            Some(TierLevel::Resource)
        );
        assert_eq!(b_x.resource_key, "/b/1/x:GET");
        assert!(throttle_of(&loaded, 1, 1).unwrap().tier.is_none());

        let bad = file(
            "c.yaml",
            "/c",
            "  /x: {get: {x-wso2-throttling-tier: Gold}}\n",
        );
        let failed = load_project("p", &[bad], None, &options).unwrap_err();
        let text = failed.error.to_string();
        assert!(
            text.contains("c.yaml:6")
                && text.contains("API 'c.yaml' 1")
                && text.contains("'Gold'")
                && text.contains("subscription policy"),
            "{text}"
        );

        // Without policies.yaml nothing is counted and a named tier warns.
        let loaded = load(
            "p",
            &[file(
                "d.yaml",
                "/d",
                "  /x: {get: {x-wso2-throttling-tier: 3PerMin}}\n",
            )],
        )
        .unwrap();
        assert!(throttle_of(&loaded, 0, 0).is_none());
        assert!(loaded
            .warnings
            .iter()
            .any(|w| w.message.contains("no policies.yaml")));
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
            ..Default::default()
        };
        let loaded = load_project("p", &[own, plain], None, &options).unwrap();
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
