//! Translation of an Express Gateway 1.16 `gateway.config.yml` (kept in the project as
//! `express-gateway/gateway.config.yml`) into the gateway model: listeners, routes, service
//! endpoints and pipelines (`runtime-template/src/model/express.rs`, `pipeline.rs`).
//!
//! The rules are Express Gateway's own (`lib/gateway/pipelines.js`, `lib/config/schemas`), as
//! summarised in `docs/express-gateway-migration.md`:
//! - API endpoints are grouped by `hostRegex`, else `host` (default `*`), groups in order of first
//!   appearance; inside a group, endpoints and their paths in declaration order;
//! - legacy singular keys (`pipeline`, `apiEndpoint`, a pipeline's `apiEndpoint` and `policy`)
//!   stand for the plural ones;
//! - an API endpoint named by two pipelines is served by the *last* one (EG fills a map in
//!   declaration order), with a warning;
//! - a step using a policy missing from the `policies` whitelist is an error, as EG's
//!   `POLICY_NOT_DECLARED`.
//!
//! Values that are *settings* (ports, host names, TLS files, service endpoint URLs, `host`
//! patterns) keep their `${VAR}` references, substituted when the gateway starts
//! ([`mgw_runtime::env_template`]); everything else must be known at build and refuses them.

mod policies;

use std::collections::HashMap;

use mgw_runtime::env_template;
use mgw_runtime::model::express::{
    ExpressGateway, ExpressRoute, HostPattern, HttpsListen, Listen, PathPattern, SniCertificate,
    Storage, StorageProvider,
};
use mgw_runtime::model::{
    Endpoint, EndpointKind, Environment, GatewayModel, DEFAULT_ENDPOINT_TIMEOUT_MS,
};
use serde_json::{Map, Value};

use super::document::{child, Document};
use super::Diagnostics;

pub use policies::check_expression;

/// Service endpoints by name: their index in the model's endpoints and their `proxyOptions`.
pub(crate) type Services = HashMap<String, (usize, Option<Map<String, Value>>)>;

/// What the build allows.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// `micro-gw build --allow-unsupported`: steps of policies this version cannot run yet are
    /// kept with a stated behaviour instead of failing the build.
    pub allow_unsupported: bool,
}

/// One step of a policy this version cannot run yet, for the build's report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsupportedStep {
    /// `file:line`.
    pub at: String,
    /// The pipeline's name.
    pub pipeline: String,
    /// The policy's name.
    pub policy: String,
    /// What the step does until it is supported.
    pub behaviour: String,
}

impl std::fmt::Display for UnsupportedStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: pipeline '{}', policy '{}': {}",
            self.at, self.pipeline, self.policy, self.behaviour
        )
    }
}

/// The keys of `gateway.config.yml` micro-gw reads.
const TOP_KEYS: [&str; 10] = [
    "http",
    "https",
    "admin",
    "apiEndpoints",
    "apiEndpoint",
    "serviceEndpoints",
    "policies",
    "pipelines",
    "pipeline",
    "$schema",
];

/// Reading one document, with its file name for messages.
pub(crate) struct Ctx<'a> {
    pub(crate) doc: &'a Document,
    pub(crate) diags: &'a mut Diagnostics,
}

impl Ctx<'_> {
    pub(crate) fn file(&self) -> &str {
        &self.doc.file
    }
    pub(crate) fn line(&self, pointer: &str) -> Option<usize> {
        self.doc.line(pointer)
    }
    pub(crate) fn at(&self, pointer: &str) -> String {
        match self.line(pointer) {
            Some(line) => format!("{}:{line}", self.doc.file),
            None => self.doc.file.clone(),
        }
    }
    pub(crate) fn error(&mut self, pointer: &str, message: impl Into<String>) {
        let line = self.line(pointer);
        self.diags.error(&self.doc.file, line, message);
    }
    pub(crate) fn warn(&mut self, pointer: &str, message: impl Into<String>) {
        let line = self.line(pointer);
        self.diags.warn(&self.doc.file, line, message);
    }

    /// A setting: a string or a number, `${VAR}` allowed (checked for syntax).
    pub(crate) fn setting(&mut self, pointer: &str, what: &str, value: &Value) -> Option<String> {
        let text = match value {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => {
                self.error(
                    pointer,
                    format!("{what} must be a string or a number, not {}", kind(value)),
                );
                return None;
            }
        };
        if let Err(err) = env_template::check(&text) {
            self.error(pointer, format!("{what}: {err}"));
            return None;
        }
        Some(text)
    }

    /// A string the build must know: refuses `${VAR}`, which Express Gateway substituted when it
    /// loaded the file but micro-gw compiles in.
    pub(crate) fn literal(&mut self, pointer: &str, what: &str, value: &Value) -> Option<String> {
        let Value::String(text) = value else {
            self.error(
                pointer,
                format!("{what} must be a string, not {}", kind(value)),
            );
            return None;
        };
        self.no_variables(pointer, what, text).then(|| text.clone())
    }

    /// False (with an error) when `text` refers to an environment variable.
    pub(crate) fn no_variables(&mut self, pointer: &str, what: &str, text: &str) -> bool {
        let names = env_template::variables(text);
        if let Some(name) = names.first() {
            self.error(
                pointer,
                format!(
                    "{what} uses the environment variable ${{{name}}}: Express Gateway substitutes it when it loads the file, but micro-gw compiles {what} into the gateway and substitutes variables only in settings (listeners, TLS files, service endpoint URLs, host patterns); write the value itself"
                ),
            );
            return false;
        }
        true
    }

    /// False (with one error per string) when any string inside `value` refers to an
    /// environment variable, keys in `settings` (at the first level) excepted: every field
    /// that is not a setting must be known at build.
    pub(crate) fn refuse_variables(
        &mut self,
        pointer: &str,
        value: &Value,
        what: &str,
        settings: &[&str],
    ) -> bool {
        match value {
            Value::String(text) => self.no_variables(pointer, what, text),
            Value::Array(items) => {
                let mut ok = true;
                for (i, item) in items.iter().enumerate() {
                    ok &= self.refuse_variables(&format!("{pointer}/{i}"), item, what, &[]);
                }
                ok
            }
            Value::Object(map) => {
                let mut ok = true;
                for (key, item) in map {
                    if settings.contains(&key.as_str()) {
                        continue;
                    }
                    ok &= self.refuse_variables(
                        &child(pointer, key),
                        item,
                        &format!("{what} {key}"),
                        &[],
                    );
                }
                ok
            }
            _ => true,
        }
    }

    /// Warns about keys micro-gw does not read.
    pub(crate) fn unknown_keys(
        &mut self,
        pointer: &str,
        map: &Map<String, Value>,
        known: &[&str],
        what: &str,
    ) {
        for key in map.keys() {
            if !known.contains(&key.as_str()) {
                let hint = known
                    .iter()
                    .find(|k| similar(k, key))
                    .map(|k| format!(" (did you mean '{k}'?)"))
                    .unwrap_or_default();
                self.warn(
                    &child(pointer, key),
                    format!("'{key}' is not a key of {what} and is ignored, as Express Gateway ignores it{hint}"),
                );
            }
        }
    }
}

/// A loose "did you mean": the same but for case, or one extra, missing or different character.
fn similar(a: &str, b: &str) -> bool {
    let a: Vec<char> = a.to_lowercase().chars().collect();
    let b: Vec<char> = b.to_lowercase().chars().collect();
    if a == b {
        return true;
    }
    let (short, long) = if a.len() <= b.len() {
        (&a, &b)
    } else {
        (&b, &a)
    };
    if long.len() - short.len() > 1 {
        return false;
    }
    let common = short
        .iter()
        .zip(long.iter())
        .take_while(|(x, y)| x == y)
        .count();
    let rest_short = short.get(common..).unwrap_or(&[]);
    let rest_long = long.get(common + 1..).unwrap_or(&[]);
    // One extra character in the longer name, or one different character at the same place.
    rest_long == rest_short
        || (short.len() == long.len() && rest_short.get(1..).unwrap_or(&[]) == rest_long)
}

#[cfg(test)]
#[test]
fn did_you_mean_is_loose_and_never_panics() {
    assert!(similar("host", "hosts"));
    assert!(similar("paths", "path"));
    assert!(similar("methods", "Methods"));
    assert!(similar("scopes", "scopez"));
    assert!(!similar("host", "port"));
    assert!(!similar("host", "hostRegex"));
    assert!(!similar("é", "ü-long"));
    assert!(similar("hôst", "hôsts"));
}

pub(crate) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "empty",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// Parses an Express Gateway configuration file, with a message about Express Gateway when the
/// top level is not a mapping.
pub fn parse(file: &str, text: &str) -> Result<Document, super::document::ParseError> {
    Document::parse_mapping(
        file,
        text,
        "an Express Gateway configuration must be a mapping with http, apiEndpoints, serviceEndpoints, policies and pipelines at the top",
    )
}

/// What `system.config.yml` changes in the gateway: the routes of Kargo's plugins that
/// micro-gw has built in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SystemSettings {
    /// `plugins.healthcheck`: the gateway route's path (`endpointName`, `/healthcheck`).
    pub healthcheck: Option<String>,
    /// `plugins.metrics`: the admin route's path (`endpointName`, `/metrics`).
    pub metrics_path: Option<String>,
    /// `plugins.storage`: the S3 route on the admin listener and its providers.
    pub storage: Option<Storage>,
    /// `db.redis`: where the consumers live (`[store]` of `conf/micro-gw.toml`), when given.
    pub store: Option<StoreMapping>,
}

/// `db.redis` of `system.config.yml` as `[store]` keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreMapping {
    /// `emulate: true`: EG's in-process store; micro-gw's embedded file (`redis = ""`).
    Embedded,
    /// A Redis server.
    Redis {
        /// `[store] redis`: `redis[s]://[:password@]host:port/db`, `${VAR}` kept.
        url: String,
        /// `[store] redis_password_env`: the variable of a `password: ${VAR}`.
        password_env: String,
        /// `[store] redis_namespace` (`namespace`, EG's default `EG`).
        namespace: String,
        /// `[store] redis_ca` (`tls.caFile`, made absolute), or empty.
        ca: String,
    },
}

/// Reads `db.redis` (EG `lib/db.js`: `emulate` and `namespace`, the rest given to ioredis).
/// Settings keep their `${VAR}` references for the gateway to substitute at start-up, except
/// `emulate`, which decides at import what the project's store is (its variable is read from
/// the importing environment, with its default, and a warning says so). `base` is the folder
/// of `system.config.yml`, against which a relative `tls.caFile` is made absolute.
fn store_mapping(
    ctx: &mut Ctx<'_>,
    redis: &Map<String, Value>,
    base: Option<&std::path::Path>,
) -> Option<StoreMapping> {
    const KNOWN: [&str; 7] = [
        "emulate",
        "namespace",
        "host",
        "port",
        "password",
        "db",
        "tls",
    ];
    let pointer = "/db/redis";
    let text = |value: Option<&Value>| -> Option<String> {
        match value? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    };
    let emulate = match redis.get("emulate") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            let raw = text(Some(other)).unwrap_or_default();
            let value = mgw_runtime::env_template::expand_env(&raw).unwrap_or_default();
            if !mgw_runtime::env_template::variables(&raw).is_empty() {
                ctx.warn(
                    &child(pointer, "emulate"),
                    format!("db.redis.emulate {raw:?} is decided at import (here {value:?}): the project's [store] is written accordingly; change it later with --store.redis=… or MGW_STORE_REDIS"),
                );
            }
            value == "true"
        }
    };
    if emulate {
        return Some(StoreMapping::Embedded);
    }
    let others: Vec<&str> = redis
        .keys()
        .map(String::as_str)
        .filter(|k| !KNOWN.contains(k))
        .collect();
    if !others.is_empty() {
        ctx.warn(
            pointer,
            format!(
                "db.redis options micro-gw does not use (single node or TLS only): {}",
                others.join(", ")
            ),
        );
    }
    let host = text(redis.get("host")).unwrap_or_else(|| "localhost".to_string());
    let port = text(redis.get("port")).unwrap_or_else(|| "6379".to_string());
    let db = text(redis.get("db"));
    let namespace = text(redis.get("namespace")).unwrap_or_else(|| "EG".to_string());
    let (tls, ca) = match redis.get("tls") {
        None | Some(Value::Null) | Some(Value::Bool(false)) => (false, String::new()),
        Some(Value::Object(tls)) => {
            let client: Vec<&str> = ["keyFile", "certFile"]
                .into_iter()
                .filter(|k| tls.contains_key(*k))
                .collect();
            if !client.is_empty() {
                ctx.warn(
                    &child(pointer, "tls"),
                    format!("db.redis.tls {} (a client certificate) is not supported: the gateway connects with TLS without one", client.join(" and ")),
                );
            }
            let ca = text(tls.get("caFile")).map_or_else(String::new, |file| {
                let path = std::path::Path::new(&file);
                match base {
                    Some(base) if path.is_relative() && !file.contains("${") => {
                        base.join(path).display().to_string()
                    }
                    _ => file,
                }
            });
            (true, ca)
        }
        Some(_) => (true, String::new()),
    };
    let mut password_env = String::new();
    let userinfo = match text(redis.get("password")) {
        None => String::new(),
        Some(password) => {
            let variables = mgw_runtime::env_template::variables(&password);
            let whole = variables.len() == 1
                && (password == format!("${{{}}}", variables[0])
                    || (password.starts_with(&format!("${{{}:-", variables[0]))
                        && password.ends_with('}')
                        && !password[2..].contains("${")));
            if whole {
                password_env = variables[0].to_string();
                if password.contains(":-") {
                    ctx.warn(
                        &child(pointer, "password"),
                        format!("db.redis.password {password:?}: the password is read from {} when the gateway starts ([store] redis_password_env); its default is not kept", variables[0]),
                    );
                }
                String::new()
            } else if variables.is_empty() {
                ctx.warn(
                    &child(pointer, "password"),
                    "db.redis.password is written in clear: it is copied into conf/micro-gw.toml ([store] redis); write `password: ${REDIS_PASSWORD}` to have the gateway read it from the environment ([store] redis_password_env)".to_string(),
                );
                format!(":{}@", mgw_runtime::config::percent_encode(&password))
            } else {
                ctx.warn(
                    &child(pointer, "password"),
                    format!("db.redis.password {password:?} mixes text and variables: it is kept in [store] redis and substituted at start-up without URL-encoding; prefer `password: ${{VAR}}`"),
                );
                format!(":{password}@")
            }
        }
    };
    let scheme = if tls { "rediss" } else { "redis" };
    let db = db.map_or_else(String::new, |db| format!("/{db}"));
    Some(StoreMapping::Redis {
        url: format!("{scheme}://{userinfo}{host}:{port}{db}"),
        password_env,
        namespace,
        ca,
    })
}

/// Reads `system.config.yml`. Kargo's plugins `healthcheck`, `metrics`, `scopes` and `storage`
/// are built in (their routes and policies); `populate` is `micro-gw consumers populate`; any other plugin
/// is named in a warning, as micro-gw runs no JavaScript (its policies are reported where
/// pipelines use them).
pub fn system_config(
    doc: &Document,
    diags: &mut Diagnostics,
    base: Option<&std::path::Path>,
) -> SystemSettings {
    let mut ctx = Ctx { doc, diags };
    let mut settings = SystemSettings::default();
    if let Some(Value::Object(redis)) = doc.value.get("db").and_then(|db| db.get("redis")) {
        settings.store = store_mapping(&mut ctx, redis, base);
    }
    let Some(Value::Object(plugins)) = doc.value.get("plugins") else {
        return settings;
    };
    let endpoint = |name: &str, default: &str| -> String {
        plugins
            .get(name)
            .and_then(|p| p.get("endpointName"))
            .and_then(Value::as_str)
            .map_or_else(|| default.to_string(), str::to_string)
    };
    let mut others = Vec::new();
    for name in plugins.keys() {
        match name.as_str() {
            "healthcheck" => settings.healthcheck = Some(endpoint("healthcheck", "/healthcheck")),
            "metrics" => settings.metrics_path = Some(endpoint("metrics", "/metrics")),
            "scopes" => {}
            "storage" => settings.storage = storage(&mut ctx, &plugins[name]),
            "populate" => ctx.warn(
                &format!("/plugins/{name}"),
                "the populate plugin is not run at start-up: sync the consumers with `micro-gw consumers populate <project> <file>`".to_string(),
            ),
            other => others.push(other.to_string()),
        }
    }
    if !others.is_empty() {
        ctx.warn(
            "/plugins",
            format!(
                "plugins are not loaded (micro-gw runs no JavaScript): {}; the policies they add are reported where pipelines use them, their gateway and admin routes do not exist",
                others.join(", ")
            ),
        );
    }
    settings
}

/// The keys of a storage provider: aws-sdk v2's S3 options that matter, and `buckets`.
const STORAGE_PROVIDER_KEYS: [&str; 8] = [
    "accessKeyId",
    "secretAccessKey",
    "endpoint",
    "region",
    "default",
    "s3ForcePathStyle",
    "httpOptions",
    "buckets",
];

/// aws-sdk v2's `httpOptions.timeout`: milliseconds a provider may take to answer; `None`
/// when absent (the SDK's default applies). Other `httpOptions` keys warn: they are not used.
fn storage_timeout(
    ctx: &mut Ctx<'_>,
    at: &str,
    name: &str,
    options: &serde_json::Map<String, Value>,
) -> Result<Option<u64>, ()> {
    let at = child(at, "httpOptions");
    let http = match options.get("httpOptions") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(http)) => http,
        Some(other) => {
            ctx.error(
                &at,
                format!(
                    "httpOptions of storage provider '{name}' must be a mapping, not {}",
                    kind(other)
                ),
            );
            return Err(());
        }
    };
    for key in http.keys().filter(|k| *k != "timeout") {
        ctx.warn(
            &child(&at, key),
            format!("httpOptions.{key} of storage provider '{name}' is not used by micro-gw (it reads httpOptions.timeout; connections time out after [upstream] connect_timeout_ms)"),
        );
    }
    match http.get("timeout") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) if n.as_u64().is_some_and(|ms| ms > 0) => Ok(n.as_u64()),
        Some(other) => {
            ctx.error(
                &child(&at, "timeout"),
                format!("httpOptions.timeout of storage provider '{name}' must be a whole number of milliseconds above 0, not {other}"),
            );
            Err(())
        }
    }
}

/// `plugins.storage` (Kargo's `storage.js`): `endpointName` (`/s3`) and `providers`, each a
/// set of aws-sdk options. Credentials, endpoints and regions are settings (`${VAR}`, expanded
/// when the gateway starts); a secret written in the file would be compiled into the binary,
/// so `secretAccessKey` must name a variable.
fn storage(ctx: &mut Ctx<'_>, plugin: &Value) -> Option<Storage> {
    let path = match plugin.get("endpointName") {
        None => "/s3".to_string(),
        Some(value) => {
            let text = ctx.literal("/plugins/storage/endpointName", "endpointName", value)?;
            if !text.starts_with('/') || text.len() < 2 {
                ctx.error(
                    "/plugins/storage/endpointName",
                    format!("endpointName {text:?} must be a path such as /s3"),
                );
                return None;
            }
            text
        }
    };
    let providers = match plugin.get("providers") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(map)) => map.clone(),
        Some(other) => {
            ctx.error(
                "/plugins/storage/providers",
                format!(
                    "providers must be a mapping of provider names to S3 settings, not {}",
                    kind(other)
                ),
            );
            return None;
        }
    };
    let mut out = Vec::new();
    let mut ok = true;
    for (name, options) in &providers {
        let at = format!("/plugins/storage/providers/{name}");
        let Value::Object(options) = options else {
            ctx.error(
                &at,
                format!("provider '{name}' must be a mapping of S3 settings"),
            );
            ok = false;
            continue;
        };
        for key in options.keys() {
            if !STORAGE_PROVIDER_KEYS.contains(&key.as_str()) {
                ctx.warn(
                    &child(&at, key),
                    format!("'{key}' of storage provider '{name}' is not used by micro-gw (it reads {})", STORAGE_PROVIDER_KEYS.join(", ")),
                );
            }
        }
        let mut setting = |ctx: &mut Ctx<'_>, key: &str| -> Option<String> {
            match options.get(key) {
                None | Some(Value::Null) => None,
                Some(value) => {
                    let text = ctx.setting(&child(&at, key), key, value);
                    if text.is_none() {
                        ok = false;
                    }
                    text
                }
            }
        };
        let access_key_id = setting(ctx, "accessKeyId");
        let secret_access_key = setting(ctx, "secretAccessKey");
        let endpoint = setting(ctx, "endpoint");
        let region = setting(ctx, "region");
        if let Some(secret) = &secret_access_key {
            if !env_template::has_variables(secret) {
                ctx.error(
                    &child(&at, "secretAccessKey"),
                    format!("the secretAccessKey of storage provider '{name}' is written in the file: it would be compiled into the gateway; write ${{VARIABLE}} and set the variable where the gateway runs"),
                );
                ok = false;
            }
        }
        let flag = |ctx: &mut Ctx<'_>, key: &str| -> bool {
            match options.get(key) {
                None | Some(Value::Null) => false,
                Some(Value::Bool(b)) => *b,
                Some(other) => {
                    ctx.warn(
                        &child(&at, key),
                        format!("{key} of storage provider '{name}' is {}, read as true only when it is the boolean true", kind(other)),
                    );
                    false
                }
            }
        };
        let default = flag(ctx, "default");
        let force_path_style = flag(ctx, "s3ForcePathStyle");
        let timeout_ms = storage_timeout(ctx, &at, name, options).unwrap_or_else(|()| {
            ok = false;
            None
        });
        let buckets = match options.get("buckets") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|item| {
                    let text = item.as_str().map(str::to_string);
                    if text.is_none() {
                        ctx.error(
                            &child(&at, "buckets"),
                            "buckets must be a list of bucket names",
                        );
                    }
                    text
                })
                .collect(),
            Some(_) => {
                ctx.error(
                    &child(&at, "buckets"),
                    "buckets must be a list of bucket names",
                );
                ok = false;
                Vec::new()
            }
        };
        if access_key_id.is_none() || secret_access_key.is_none() {
            ctx.warn(
                &at,
                format!("storage provider '{name}' has no accessKeyId or secretAccessKey: it is not served (as Kargo skips it)"),
            );
        }
        out.push(StorageProvider {
            name: name.clone(),
            default,
            endpoint,
            region,
            access_key_id,
            secret_access_key,
            force_path_style,
            timeout_ms,
            buckets,
        });
    }
    let defaults: Vec<&str> = out
        .iter()
        .filter(|p| p.default)
        .map(|p| p.name.as_str())
        .collect();
    if defaults.len() > 1 {
        ctx.warn(
            "/plugins/storage/providers",
            format!("several storage providers say default: true ({}): the first one serves paths without a provider name, as in Kargo", defaults.join(", ")),
        );
        let first = defaults.first().map(|s| s.to_string());
        for provider in &mut out {
            provider.default = provider.default && Some(&provider.name) == first.as_ref();
        }
    }
    ok.then_some(Storage {
        path,
        providers: out,
    })
}

/// Translates one `gateway.config.yml` into `model` (its service endpoints appended to
/// `model.endpoints`, pipelines to `model.pipelines`, one entry to `model.express`).
/// Problems go to `diags`; steps of unsupported policies are returned (and are errors unless
/// `options.allow_unsupported`).
pub fn translate(
    doc: &Document,
    model: &mut GatewayModel,
    diags: &mut Diagnostics,
    options: &Options,
) -> Vec<UnsupportedStep> {
    let mut ctx = Ctx { doc, diags };
    let Some(root) = doc.value.as_object() else {
        return Vec::new();
    };
    ctx.unknown_keys("", root, &TOP_KEYS, "an Express Gateway configuration");
    let http = root
        .get("http")
        .and_then(|v| listen(&mut ctx, "/http", "http", v, "hostname"));
    let https = root.get("https").and_then(|v| https(&mut ctx, v));
    // `admin`: EG's schema fills `port: 9876` when the key is absent; an explicit null (or
    // no `admin` at all) means no admin listener.
    let admin = match root.get("admin") {
        Some(Value::Object(map)) if !map.get("port").is_some_and(Value::is_null) => {
            let mut map = map.clone();
            map.entry("port").or_insert_with(|| Value::from(9876));
            let host_key = if map.contains_key("host") {
                "host"
            } else {
                "hostname"
            };
            if host_key == "hostname" && map.contains_key("hostname") {
                ctx.warn(
                    "/admin/hostname",
                    "admin.hostname is deprecated in Express Gateway: write admin.host",
                );
            }
            listen(&mut ctx, "/admin", "admin", &Value::Object(map), host_key)
        }
        Some(Value::Object(_)) | Some(Value::Null) | None => None,
        Some(other) => {
            ctx.error(
                "/admin",
                format!(
                    "admin must be a mapping with port and host, not {}",
                    kind(other)
                ),
            );
            None
        }
    };

    // Service endpoints, by name, appended to the model's endpoints.
    let mut services: Services = HashMap::new();
    if let Some(value) = root.get("serviceEndpoints") {
        match value {
            Value::Object(map) => {
                for (name, endpoint) in map {
                    let pointer = child("/serviceEndpoints", name);
                    if let Some((endpoint, proxy_options)) =
                        service_endpoint(&mut ctx, &pointer, name, endpoint)
                    {
                        services.insert(name.clone(), (model.endpoints.len(), proxy_options));
                        model.endpoints.push(endpoint);
                    }
                }
            }
            Value::Null => {}
            other => ctx.error(
                "/serviceEndpoints",
                format!(
                    "serviceEndpoints must be a mapping of names to {{url}} or {{urls}}, not {}",
                    kind(other)
                ),
            ),
        }
    }

    // The whitelist.
    let declared = declared_policies(&mut ctx, root.get("policies"));

    // Pipelines (plural, or the legacy singular `pipeline`), in declaration order.
    let (pipelines_key, pipelines) = named_entries(root, "pipelines", "pipeline");
    let mut endpoint_pipeline: HashMap<String, (usize, String)> = HashMap::new();
    let mut unsupported = Vec::new();
    for (name, pointer, pipeline) in &pipelines {
        let Some(map) = pipeline.as_object() else {
            ctx.error(
                pointer,
                format!(
                    "pipeline '{name}' must be a mapping with apiEndpoints and policies, not {}",
                    kind(pipeline)
                ),
            );
            continue;
        };
        ctx.unknown_keys(
            pointer,
            map,
            &["apiEndpoints", "apiEndpoint", "policies", "policy"],
            &format!("pipeline '{name}'"),
        );
        let endpoints_key = if map.contains_key("apiEndpoints") {
            "apiEndpoints"
        } else {
            "apiEndpoint"
        };
        let endpoint_names: Vec<(String, String)> = match map.get(endpoints_key) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .filter_map(|(i, v)| {
                    let p = format!("{}/{i}", child(pointer, endpoints_key));
                    value_as_name(v).map(|n| (n, p))
                })
                .collect(),
            Some(v) => value_as_name(v)
                .map(|n| vec![(n, child(pointer, endpoints_key))])
                .unwrap_or_default(),
        };
        let compiled = policies::pipeline(
            &mut ctx,
            name,
            pointer,
            map,
            &declared,
            &services,
            options,
            &mut unsupported,
        );
        let index = model.pipelines.len();
        model.pipelines.push(compiled);
        for (endpoint, at) in endpoint_names {
            if let Some((_, previous)) = endpoint_pipeline.get(&endpoint) {
                let message = format!(
                    "API endpoint '{endpoint}' is named by pipelines '{previous}' and '{name}': the last one, '{name}', serves it (as in Express Gateway); remove it from one of them"
                );
                ctx.warn(&at, message);
            }
            endpoint_pipeline.insert(endpoint, (index, name.clone()));
        }
    }
    if pipelines.is_empty() {
        ctx.warn(
            "",
            format!("there is no `{pipelines_key}`: every request to this configuration's listeners answers 404, as in Express Gateway"),
        );
    }

    // API endpoints, grouped by host, flattened into routes.
    let (_, endpoints) = named_entries(root, "apiEndpoints", "apiEndpoint");
    let mut groups: Vec<(String, bool, Vec<ExpressRoute>)> = Vec::new();
    let mut known_endpoints = Vec::new();
    for (name, pointer, value) in &endpoints {
        known_endpoints.push(name.clone());
        let configs: Vec<(String, &Value)> = match value {
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, v)| (format!("{pointer}/{i}"), v))
                .collect(),
            other => vec![(pointer.clone(), other)],
        };
        for (pointer, config) in configs {
            // Only `host` is a setting; paths, methods and scopes are compiled in.
            if !ctx.refuse_variables(
                &pointer,
                config,
                &format!("API endpoint '{name}'"),
                &["host"],
            ) {
                continue;
            }
            let pipeline = endpoint_pipeline.get(name).map(|(i, _)| *i);
            for (group_key, is_regex, route) in
                api_endpoint(&mut ctx, name, &pointer, config, pipeline)
            {
                match groups.iter_mut().find(|(k, _, _)| *k == group_key) {
                    Some((_, _, routes)) => routes.push(route),
                    None => groups.push((group_key, is_regex, vec![route])),
                }
            }
        }
    }
    for (endpoint, (_, pipeline)) in &endpoint_pipeline {
        if !known_endpoints.contains(endpoint) {
            let line = pipelines
                .iter()
                .find(|(n, _, _)| n == pipeline)
                .map(|(_, p, _)| p.clone())
                .unwrap_or_default();
            ctx.warn(
                &line,
                format!("pipeline '{pipeline}' names the API endpoint '{endpoint}', which apiEndpoints does not declare; it serves nothing there"),
            );
        }
    }
    // Express Gateway keys a group by the host text and keeps the first endpoint's kind (host
    // or hostRegex) for every later endpoint of the group.
    let routes = groups
        .into_iter()
        .flat_map(|(_, _, mut routes)| {
            if let Some(first) = routes.first().map(|r| r.host.clone()) {
                for route in &mut routes {
                    route.host = first.clone();
                }
            }
            routes
        })
        .collect();

    if !options.allow_unsupported {
        for step in &unsupported {
            let (file, line) = split_at(&step.at);
            ctx.diags.error(
                &file,
                line,
                format!(
                    "pipeline '{}': policy '{}' is not supported yet; remove the step, or build with --allow-unsupported to serve the rest (this step will then: {})",
                    step.pipeline, step.policy, step.behaviour
                ),
            );
        }
    }

    model.express.push(ExpressGateway {
        source: doc.file.clone(),
        http,
        https,
        admin,
        healthcheck: None,
        metrics_path: None,
        storage: None,
        routes,
    });
    unsupported
}

fn split_at(at: &str) -> (String, Option<usize>) {
    match at.rsplit_once(':') {
        Some((file, line)) if line.chars().all(|c| c.is_ascii_digit()) && !line.is_empty() => {
            (file.to_string(), line.parse().ok())
        }
        _ => (at.to_string(), None),
    }
}

fn value_as_name(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// `plural` (a mapping; a list counts by index, as a JavaScript `for … in`), else the legacy
/// `singular` (one entry named `0`, or a list). Returns the key used and the entries.
fn named_entries<'a>(
    root: &'a Map<String, Value>,
    plural: &'static str,
    singular: &'static str,
) -> (&'static str, Vec<(String, String, &'a Value)>) {
    let (key, value) = match root.get(plural) {
        Some(v) if !v.is_null() => (plural, v),
        _ => match root.get(singular) {
            Some(v) if !v.is_null() => (singular, v),
            _ => return (plural, Vec::new()),
        },
    };
    let base = format!("/{key}");
    let entries = match value {
        Value::Object(map) if key == plural => map
            .iter()
            .map(|(name, v)| (name.clone(), child(&base, name), v))
            .collect(),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, v)| (i.to_string(), format!("{base}/{i}"), v))
            .collect(),
        // The legacy singular form holds one entry: `[pipeline]`.
        other => vec![("0".to_string(), base, other)],
    };
    (key, entries)
}

fn listen(
    ctx: &mut Ctx<'_>,
    pointer: &str,
    what: &str,
    value: &Value,
    host_key: &str,
) -> Option<Listen> {
    let Some(map) = value.as_object() else {
        ctx.error(
            pointer,
            format!("{what} must be a mapping with a port, not {}", kind(value)),
        );
        return None;
    };
    let known: &[&str] = match what {
        "admin" => &["port", "host", "hostname", "backlog"],
        _ => &["port", "hostname"],
    };
    ctx.unknown_keys(pointer, map, known, what);
    let Some(port) = map.get("port").filter(|v| !v.is_null()) else {
        ctx.error(
            pointer,
            format!("{what} has no port: add `port: 8080` (or `port: ${{EG_HTTP_PORT:-8080}}`)"),
        );
        return None;
    };
    let port_pointer = child(pointer, "port");
    let port = ctx.setting(&port_pointer, &format!("{what}.port"), port)?;
    if let Some(default) = env_template::default_value(&port) {
        if default.trim().parse::<u16>().is_err() {
            ctx.error(
                &port_pointer,
                format!("{what}.port = {port:?} is not a port: use a number from 0 to 65535"),
            );
        }
    }
    let host = match map.get(host_key).filter(|v| !v.is_null()) {
        Some(v) => {
            Some(ctx.setting(&child(pointer, host_key), &format!("{what}.{host_key}"), v)?)
        }
        None => None,
    };
    Some(Listen { port, host })
}

fn https(ctx: &mut Ctx<'_>, value: &Value) -> Option<HttpsListen> {
    let map = value.as_object()?;
    let listen = {
        let mut plain = map.clone();
        plain.remove("tls");
        plain.remove("options");
        listen(ctx, "/https", "https", &Value::Object(plain), "hostname")?
    };
    if let Some(options) = map.get("options").filter(|v| !v.is_null()) {
        let _ = options;
        ctx.warn(
            "/https/options",
            "https.options (Node's https.createServer options, e.g. requestCert for client certificates) are not supported and are ignored",
        );
    }
    let Some(tls) = map.get("tls").and_then(Value::as_object) else {
        ctx.warn(
            "/https",
            "https has no tls certificates: no HTTPS listener is started, as in Express Gateway; add `tls: {default: {key: ..., cert: ...}}`",
        );
        return None;
    };
    let mut certificates = Vec::new();
    for (pattern, entry) in tls {
        let pointer = child("/https/tls", pattern);
        let Some(entry_map) = entry.as_object() else {
            ctx.error(
                &pointer,
                format!("https.tls.{pattern} must be a mapping with key and cert"),
            );
            continue;
        };
        ctx.unknown_keys(
            &pointer,
            entry_map,
            &["key", "cert", "ca"],
            &format!("https.tls.{pattern}"),
        );
        let file = |ctx: &mut Ctx<'_>, key: &str| -> Option<String> {
            match entry_map.get(key) {
                Some(v) => ctx.setting(
                    &child(&pointer, key),
                    &format!("https.tls.{pattern}.{key}"),
                    v,
                ),
                None => {
                    ctx.error(
                        &pointer,
                        format!("https.tls.{pattern} has no {key}: add the path of the PEM file"),
                    );
                    None
                }
            }
        };
        let key = file(ctx, "key");
        let cert = file(ctx, "cert");
        let mut ca = Vec::new();
        match entry_map.get("ca") {
            None | Some(Value::Null) => {}
            Some(Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    if let Some(c) =
                        ctx.setting(&format!("{}/{i}", child(&pointer, "ca")), "a ca file", item)
                    {
                        ca.push(c);
                    }
                }
            }
            Some(item) => {
                if let Some(c) = ctx.setting(&child(&pointer, "ca"), "a ca file", item) {
                    ca.push(c);
                }
            }
        }
        if let (Some(key), Some(cert)) = (key, cert) {
            certificates.push(SniCertificate {
                pattern: pattern.clone(),
                key,
                cert,
                ca,
            });
        }
    }
    Some(HttpsListen {
        listen,
        certificates,
    })
}

/// One service endpoint and its `proxyOptions` (merged into the proxy steps that use it).
fn service_endpoint(
    ctx: &mut Ctx<'_>,
    pointer: &str,
    name: &str,
    value: &Value,
) -> Option<(Endpoint, Option<Map<String, Value>>)> {
    let Some(map) = value.as_object() else {
        ctx.error(
            pointer,
            format!(
                "service endpoint '{name}' must be a mapping with url or urls, not {}",
                kind(value)
            ),
        );
        return None;
    };
    ctx.unknown_keys(
        pointer,
        map,
        &["url", "urls", "proxyOptions"],
        &format!("service endpoint '{name}'"),
    );
    let (kind_, raw_urls): (EndpointKind, Vec<(String, &Value)>) = match (
        map.get("url"),
        map.get("urls"),
    ) {
        (Some(url), None) => (EndpointKind::Http, vec![(child(pointer, "url"), url)]),
        (None, Some(Value::Array(urls))) if !urls.is_empty() => (
            EndpointKind::LoadBalance,
            urls.iter()
                .enumerate()
                .map(|(i, u)| (format!("{}/{i}", child(pointer, "urls")), u))
                .collect(),
        ),
        (Some(_), Some(_)) => {
            ctx.error(pointer, format!("service endpoint '{name}' has both url and urls: keep one (Express Gateway requires exactly one)"));
            return None;
        }
        _ => {
            ctx.error(pointer, format!("service endpoint '{name}' needs `url: http://host:port/path` or a non-empty list `urls: [...]`"));
            return None;
        }
    };
    let mut urls = Vec::new();
    for (p, url) in raw_urls {
        let Some(text) = ctx.setting(&p, &format!("the URL of service endpoint '{name}'"), url)
        else {
            continue;
        };
        if !env_template::has_variables(&text) {
            match url::Url::parse(&text) {
                Ok(parsed)
                    if matches!(parsed.scheme(), "http" | "https")
                        && parsed.host_str().is_some() => {}
                _ => {
                    ctx.error(&p, format!("service endpoint '{name}': {text:?} is not an http:// or https:// URL with a host"));
                    continue;
                }
            }
        }
        urls.push(text);
    }
    if urls.is_empty() {
        return None;
    }
    let proxy_options = match map.get("proxyOptions") {
        None | Some(Value::Null) => None,
        Some(Value::Object(o)) => Some(o.clone()),
        Some(other) => {
            ctx.error(
                &child(pointer, "proxyOptions"),
                format!("proxyOptions must be a mapping, not {}", kind(other)),
            );
            None
        }
    };
    Some((
        Endpoint {
            name: name.to_string(),
            environment: Environment::Production,
            kind: kind_,
            urls,
            timeout_ms: DEFAULT_ENDPOINT_TIMEOUT_MS,
        },
        proxy_options,
    ))
}

fn declared_policies(ctx: &mut Ctx<'_>, value: Option<&Value>) -> Vec<String> {
    let mut declared = Vec::new();
    match value {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                match item {
                    Value::String(s) => declared.push(s.clone()),
                    // `- proxy:` written as a mapping: its key is the name.
                    Value::Object(m) if m.len() == 1 => declared.extend(m.keys().cloned()),
                    other => ctx.error(
                        &format!("/policies/{i}"),
                        format!("policies lists policy names; this item is {}", kind(other)),
                    ),
                }
            }
        }
        Some(other) => ctx.error(
            "/policies",
            format!(
                "policies must be a list of policy names, not {}",
                kind(other)
            ),
        ),
    }
    declared
}

/// The routes of one API endpoint object: one per mount path (`pathRegex`, else each of
/// `paths`/`path`, else `*`), with the group key (`hostRegex`, else `host`, else `*`).
fn api_endpoint(
    ctx: &mut Ctx<'_>,
    name: &str,
    pointer: &str,
    value: &Value,
    pipeline: Option<usize>,
) -> Vec<(String, bool, ExpressRoute)> {
    let Some(map) = value.as_object() else {
        ctx.error(
            pointer,
            format!(
                "API endpoint '{name}' must be a mapping (host, paths, methods, scopes), not {}",
                kind(value)
            ),
        );
        return Vec::new();
    };
    let what = format!("API endpoint '{name}'");
    ctx.unknown_keys(
        pointer,
        map,
        &[
            "host",
            "hostRegex",
            "paths",
            "path",
            "pathRegex",
            "methods",
            "scopes",
        ],
        &what,
    );
    // Host.
    let (group_key, is_regex, host) = match map.get("hostRegex").filter(|v| !v.is_null()) {
        Some(v) => match ctx.literal(
            &child(pointer, "hostRegex"),
            &format!("{what} hostRegex"),
            v,
        ) {
            Some(re) if !re.is_empty() => (re.clone(), true, HostPattern::Regex(re)),
            _ => return Vec::new(),
        },
        None => match map.get("host").filter(|v| !v.is_null()) {
            Some(v) => match ctx.setting(&child(pointer, "host"), &format!("{what} host"), v) {
                Some(h) if h.is_empty() || h == "*" => (h, false, HostPattern::Any),
                Some(h) => (h.clone(), false, HostPattern::Vhost(h)),
                None => return Vec::new(),
            },
            None => ("*".to_string(), false, HostPattern::Any),
        },
    };
    // Methods.
    let methods = match map.get("methods") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) if s.trim() == "*" => Vec::new(),
        Some(Value::String(s)) => split_methods(
            ctx,
            &child(pointer, "methods"),
            s.split(',').map(str::to_string).collect(),
        ),
        Some(Value::Array(items)) => {
            let mut list = Vec::new();
            for (i, item) in items.iter().enumerate() {
                match item {
                    Value::String(s) => list.push(s.clone()),
                    other => ctx.error(
                        &format!("{}/{i}", child(pointer, "methods")),
                        format!("a method must be a string, not {}", kind(other)),
                    ),
                }
            }
            split_methods(ctx, &child(pointer, "methods"), list)
        }
        Some(other) => {
            ctx.error(
                &child(pointer, "methods"),
                format!(
                    "methods must be \"GET,POST\", a list, or '*', not {}",
                    kind(other)
                ),
            );
            Vec::new()
        }
    };
    // Scopes.
    let mut scopes = Vec::new();
    match map.get("scopes") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                let p = format!("{}/{i}", child(pointer, "scopes"));
                match item {
                    Value::String(s) => scopes.push(s.clone()),
                    Value::Object(o) => match o.get("scope") {
                        Some(Value::String(s)) => scopes.push(s.clone()),
                        _ => ctx.error(&p, "a scope is a string or {scope: <name>}"),
                    },
                    other => ctx.error(
                        &p,
                        format!(
                            "a scope is a string or {{scope: <name>}}, not {}",
                            kind(other)
                        ),
                    ),
                }
            }
        }
        Some(Value::String(s)) => scopes.push(s.clone()),
        Some(other) => ctx.error(
            &child(pointer, "scopes"),
            format!("scopes must be a list, not {}", kind(other)),
        ),
    }
    // Paths.
    let mut paths = Vec::new();
    if let Some(v) = map.get("pathRegex").filter(|v| !v.is_null()) {
        if let Some(re) = ctx.literal(
            &child(pointer, "pathRegex"),
            &format!("{what} pathRegex"),
            v,
        ) {
            paths.push(PathPattern::Regex(re));
        }
    } else {
        let key = if map.get("paths").is_some_and(|v| !v.is_null()) {
            "paths"
        } else {
            "path"
        };
        match map.get(key) {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if s.is_empty() => {}
            Some(Value::String(s)) => {
                if let Some(p) = express_path(ctx, &child(pointer, key), &what, s) {
                    paths.push(p);
                }
            }
            Some(Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    let p = format!("{}/{i}", child(pointer, key));
                    match item {
                        Value::String(s) => {
                            if let Some(p) = express_path(ctx, &p, &what, s) {
                                paths.push(p);
                            }
                        }
                        other => {
                            ctx.error(&p, format!("a path must be a string, not {}", kind(other)))
                        }
                    }
                }
            }
            Some(other) => ctx.error(
                &child(pointer, key),
                format!(
                    "{key} must be a path or a list of paths, not {}",
                    kind(other)
                ),
            ),
        }
        if paths.is_empty() {
            paths.push(PathPattern::Express("*".into()));
        }
    }
    paths
        .into_iter()
        .map(|path| {
            (
                group_key.clone(),
                is_regex,
                ExpressRoute {
                    api_endpoint: name.to_string(),
                    host: host.clone(),
                    path,
                    methods: methods.clone(),
                    scopes: scopes.clone(),
                    pipeline,
                },
            )
        })
        .collect()
}

fn express_path(ctx: &mut Ctx<'_>, pointer: &str, what: &str, path: &str) -> Option<PathPattern> {
    if !ctx.no_variables(pointer, &format!("the path of {what}"), path) {
        return None;
    }
    if !path.starts_with('/') && path != "*" {
        ctx.warn(
            pointer,
            format!("the path {path:?} of {what} does not start with '/', so no request path can match it (as in Express); write '/{path}'"),
        );
    }
    Some(PathPattern::Express(path.to_string()))
}

/// Methods as Express registers them: trimmed, empty items dropped, upper-case; each must be
/// an HTTP method token.
fn split_methods(ctx: &mut Ctx<'_>, pointer: &str, items: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for item in items {
        let m = item.trim().to_ascii_uppercase();
        if m.is_empty() {
            continue;
        }
        if m == "*" || !m.bytes().all(|b| b.is_ascii_alphabetic() || b == b'-') {
            ctx.error(
                pointer,
                format!("{item:?} is not an HTTP method: list methods such as GET,POST, or write '*' alone for every method"),
            );
            continue;
        }
        if !out.contains(&m) {
            out.push(m);
        }
    }
    out
}

#[cfg(test)]
mod tests;
