//! Generating the per-project gateway crate from askama templates.
//!
//! The crate is data and wiring only: a constant `main.rs` that hands the embedded model to
//! the runtime, the model as JSON, a manifest and the pinned lock file. No API name, path or
//! URL is ever written into Rust source.

use std::path::Path;

use anyhow::Context;
use askama::Template;
use mgw_runtime::model::GatewayModel;

use crate::fsutil::write_atomic;

/// The lock file of every generated crate (kept current by `scripts/update-gateway-lock.sh`). The
/// generated manifest forwards all of the runtime's optional features, so cargo resolves their
/// crates into this one lock whichever the project enables.
pub const PINNED_LOCK: &str = include_str!("../../templates/gateway/Cargo.lock");

/// An optional part of the runtime that `micro-gw build --features` compiles in whether or not
/// the project needs it (the runtime's cargo features of the same names; `all` is the four).
/// Projects built with the same parts share one compiled runtime in the shared target
/// directory, where each other combination compiles the runtime again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RuntimeFeature {
    /// Kargo's S3 storage route (`storage`).
    Storage,
    /// `validate` steps and `json-schema` conditions (`validation`).
    Validation,
    /// Span export over OTLP (`otlp`).
    Otlp,
    /// The Redis store and rate-limit counters (`redis`).
    Redis,
    /// All of the above.
    All,
}

impl RuntimeFeature {
    /// The cargo features this stands for.
    pub fn cargo_features(self) -> &'static [&'static str] {
        match self {
            RuntimeFeature::Storage => &["storage"],
            RuntimeFeature::Validation => &["validation"],
            RuntimeFeature::Otlp => &["otlp"],
            RuntimeFeature::Redis => &["redis"],
            RuntimeFeature::All => &mgw_runtime::OPTIONAL_FEATURES,
        }
    }
}

/// The gateway's global allocator (`micro-gw build --allocator`), compiled in: the runtime's
/// `mimalloc` feature or the C library's `malloc`.
///
/// mimalloc is the default: 6-8 % less CPU per HTTPS h2 request and 1-6 % per 1 KiB `GET` than
/// glibc's malloc, for about 0.5 MB more idle memory and a C compile of a few seconds on the
/// first build (why: the runtime's `ALLOCATOR`; figures: docs/benchmarks.md, "Issue 16:
/// twenty-first pass").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Allocator {
    /// mimalloc (the runtime's `mimalloc` feature).
    #[default]
    Mimalloc,
    /// The C library's `malloc`, which heap profilers that replace it (valgrind's dhat and
    /// massif, heaptrack) see.
    System,
}

/// Printed by `micro-gw build --allocator system` before cargo starts.
pub const SYSTEM_ALLOCATOR_NOTE: &str = "Allocator: the C library's malloc (--allocator system), for heap profilers and the smallest idle memory; it costs more CPU per request than the default mimalloc. The runtime is compiled once for it (minutes the first time).";

impl Allocator {
    /// The runtime feature that compiles this allocator in, if any.
    pub fn cargo_feature(self) -> Option<&'static str> {
        match self {
            Allocator::Mimalloc => Some("mimalloc"),
            Allocator::System => None,
        }
    }
}

/// The cargo features `asked` adds to what the project needs (`needed`), each once, in the
/// order asked.
pub fn extra_features(needed: &[&str], asked: &[RuntimeFeature]) -> Vec<&'static str> {
    let mut extra: Vec<&'static str> = Vec::new();
    for feature in asked.iter().flat_map(|f| f.cargo_features()) {
        if !needed.contains(feature) && !extra.contains(feature) {
            extra.push(feature);
        }
    }
    extra
}

/// The runtime's optional features and the crates that only they bring: a project that does not
/// enable a feature does not compile what is reachable only through these.
const FEATURE_ROOTS: &[(&str, &[&str])] = &[
    ("mimalloc", &["mimalloc"]),
    ("storage", &["aws-sigv4", "aws-credential-types"]),
    ("validation", &["jsonschema"]),
    ("redis", &["redis"]),
    (
        "otlp",
        &[
            "opentelemetry",
            "opentelemetry_sdk",
            "opentelemetry-otlp",
            "opentelemetry-http",
            "opentelemetry-proto",
            "async-trait",
        ],
    ),
];

/// An estimate of how many packages a cold build of a project with `features` compiles: the
/// lock's packages reachable from the gateway crate, not following the crates of the optional
/// features it leaves off (shown as the progress total).
pub fn package_estimate(features: &[&str]) -> u64 {
    let skipped: std::collections::HashSet<&str> = FEATURE_ROOTS
        .iter()
        .filter(|(feature, _)| !features.contains(feature))
        .flat_map(|(_, roots)| roots.iter().copied())
        .collect();
    let graph = lock_graph(PINNED_LOCK);
    let mut seen = std::collections::HashSet::new();
    let mut next = vec!["mgw-gateway"];
    while let Some(name) = next.pop() {
        if skipped.contains(name) || !seen.insert(name) {
            continue;
        }
        if let Some(dependencies) = graph.get(name) {
            next.extend(dependencies.iter().copied());
        }
    }
    seen.len() as u64
}

/// Package name → the names of its dependencies, from a lock file (a dependency written
/// `name version` when several versions are locked counts by name).
fn lock_graph(lock: &str) -> std::collections::HashMap<&str, Vec<&str>> {
    let mut graph = std::collections::HashMap::new();
    let mut current: Option<&str> = None;
    let mut in_dependencies = false;
    for line in lock.lines() {
        let line = line.trim();
        if line == "[[package]]" {
            current = None;
            in_dependencies = false;
        } else if let Some(name) = line.strip_prefix("name = ") {
            let name = name.trim_matches('"');
            current = Some(name);
            graph.entry(name).or_insert_with(Vec::new);
        } else if line == "dependencies = [" {
            in_dependencies = true;
        } else if in_dependencies && line == "]" {
            in_dependencies = false;
        } else if in_dependencies {
            let dependency = line.trim_end_matches(',').trim_matches('"');
            let dependency = dependency.split(' ').next().unwrap_or(dependency);
            if let Some(package) = current {
                graph.entry(package).or_default().push(dependency);
            }
        }
    }
    graph
}

#[derive(Template)]
#[template(path = "gateway/Cargo.toml", escape = "none")]
struct Manifest<'a> {
    toolkit_version: &'a str,
    binary: &'a str,
    runtime_path_literal: String,
    /// The TOML array of the optional runtime features the model needs (`[]` for most).
    features: String,
}

#[derive(Template)]
#[template(path = "gateway/main.rs", escape = "none")]
struct Main;

/// The base gateway's `main.rs`: the model is read from the binary's own file.
const BASE_MAIN: &str = include_str!("../../templates/gateway/base_main.rs");

/// The generated crate's build script, the same for every project: packed relative
/// relocations for the gateway binary where the machine's linker and C library take them.
const BUILD_SCRIPT: &str = include_str!("../../templates/gateway/build.rs");

/// The generated files, by name, for a project whose settings need no optional feature.
pub fn render(
    model: &GatewayModel,
    binary: &str,
    runtime_dir: &Path,
) -> anyhow::Result<GeneratedFiles> {
    render_with_features(model, &runtime_features(model), binary, runtime_dir)
}

/// The generated files, by name, with the runtime's optional `features` (the model's,
/// [`runtime_features`], and the settings', [`settings_features`]).
pub fn render_with_features(
    model: &GatewayModel,
    features: &[&str],
    binary: &str,
    runtime_dir: &Path,
) -> anyhow::Result<GeneratedFiles> {
    let manifest = render_manifest(features, binary, runtime_dir)?;
    let main = Main.render().context("rendering main.rs")?;
    let model_json = serde_json::to_vec_pretty(model).context("serializing the gateway model")?;
    Ok(vec![
        ("Cargo.toml", manifest.into_bytes()),
        ("Cargo.lock", PINNED_LOCK.as_bytes().to_vec()),
        ("main.rs", main.into_bytes()),
        ("build.rs", BUILD_SCRIPT.as_bytes().to_vec()),
        ("model.json", model_json),
    ])
}

/// Generated files: each one's name in the crate's directory and its content.
pub type GeneratedFiles = Vec<(&'static str, Vec<u8>)>;

/// The generated crate's `Cargo.toml`.
fn render_manifest(features: &[&str], binary: &str, runtime_dir: &Path) -> anyhow::Result<String> {
    let runtime_path = runtime_dir
        .to_str()
        .context("the cache directory path is not valid UTF-8")?;
    Manifest {
        toolkit_version: env!("CARGO_PKG_VERSION"),
        binary,
        // A TOML string literal, escaped by the TOML serializer.
        runtime_path_literal: toml::Value::String(runtime_path.to_string()).to_string(),
        features: features_literal(features),
    }
    .render()
    .context("rendering Cargo.toml")
}

/// The base gateway of `micro-gw build --lto` for the runtime's optional `features` (every
/// one the project needs or asked for): the name of its crate's directory under the cache
/// directory's `lto-base/` and of its binary, then its files. The name is `mgw-base-` and the
/// first 16 hexadecimal digits of the SHA-256 of what the base is built from: its manifest
/// (the toolkit's version, the runtime's directory, which names the runtime's version and
/// sources, and the sorted features), the pinned lock file, its `main.rs` and build script.
/// Projects that need the same features share one base, compiled and optimised once
/// (`mgw_runtime::attached_model`); another toolkit writes another base.
pub fn render_base(
    features: &[&str],
    runtime_dir: &Path,
) -> anyhow::Result<(String, GeneratedFiles)> {
    let mut sorted: Vec<&str> = features.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    // Everything the base is built from: its files as they would be under a placeholder name
    // (the manifest names the toolkit's version, the runtime's directory and the features),
    // each after its length.
    let placeholder = render_manifest(&sorted, "mgw-base", runtime_dir)?;
    let files = [
        placeholder.as_bytes(),
        PINNED_LOCK.as_bytes(),
        BASE_MAIN.as_bytes(),
        BUILD_SCRIPT.as_bytes(),
    ];
    let lengths = files.map(|file| (file.len() as u64).to_le_bytes());
    let framed: Vec<&[u8]> = lengths
        .iter()
        .zip(files)
        .flat_map(|(length, file)| [length.as_slice(), file])
        .collect();
    let name = format!("mgw-base-{}", crate::fsutil::content_name(&framed));
    let manifest = render_manifest(&sorted, &name, runtime_dir)?;
    Ok((
        name,
        vec![
            ("Cargo.toml", manifest.into_bytes()),
            ("Cargo.lock", PINNED_LOCK.as_bytes().to_vec()),
            ("main.rs", BASE_MAIN.as_bytes().to_vec()),
            ("build.rs", BUILD_SCRIPT.as_bytes().to_vec()),
        ],
    ))
}

/// The optional features of `mgw-runtime` the model needs: `storage` when an Express Gateway
/// configuration declares Kargo's storage plugin, `validation` when a pipeline has a `validate`
/// step or an Express Gateway `json-schema` condition. Projects without any keep sharing the runtime compiled with its default features.
pub fn runtime_features(model: &GatewayModel) -> Vec<&'static str> {
    let mut features = Vec::new();
    if model.express.iter().any(|config| config.storage.is_some()) {
        features.push("storage");
    }
    if model.pipelines.iter().any(|pipeline| {
        pipeline.steps.iter().any(|step| {
            matches!(step.policy, mgw_runtime::model::PolicySpec::Validate(_))
                || step
                    .condition
                    .as_ref()
                    .is_some_and(mgw_runtime::model::Condition::reads_body)
        })
    }) {
        features.push("validation");
    }
    features
}

/// The optional features of `mgw-runtime` the project's settings (`conf/micro-gw.toml`) need:
/// `otlp` when `[tracing] otlp_endpoint` is set, `redis` when the file names Redis
/// ([`names_redis`]). The values themselves are read at start-up, so they may differ per
/// deployment; only whether there is one is compiled in.
pub fn settings_features(config: &mgw_runtime::config::RuntimeConfig) -> Vec<&'static str> {
    let mut features = Vec::new();
    if !config.tracing.otlp_endpoint.is_empty() {
        features.push("otlp");
    }
    if names_redis(config) {
        features.push("redis");
    }
    features
}

/// Whether `conf/micro-gw.toml` names Redis at all: a `[store] redis` or `[rate_limit] redis`
/// URL (a `${VAR}` counts, whatever it holds at start-up), `redis_password_env`, `redis_ca`,
/// or `[rate_limit] backend = "redis"`. `redis_namespace` (always set) and `on_redis_error`
/// alone connect to nothing.
pub fn names_redis(config: &mgw_runtime::config::RuntimeConfig) -> bool {
    let store = &config.store;
    !store.redis.is_empty()
        || !store.redis_password_env.is_empty()
        || !store.redis_ca.is_empty()
        || !config.rate_limit.redis.is_empty()
        || config.rate_limit.backend == mgw_runtime::config::CountersBackend::Redis
}

/// The optional features of `mgw-runtime` an Express Gateway `system.config.yml` needs:
/// `redis` when its `db.redis` is a server (not `emulate: true`), as Express Gateway then keeps
/// its consumers and rate-limit counters there.
pub fn system_features(
    store: Option<&crate::loader::express_gateway::StoreMapping>,
) -> Vec<&'static str> {
    match store {
        Some(crate::loader::express_gateway::StoreMapping::Redis { .. }) => vec!["redis"],
        _ => Vec::new(),
    }
}

fn features_literal(features: &[&str]) -> String {
    toml::Value::Array(
        features
            .iter()
            .map(|f| toml::Value::String((*f).to_string()))
            .collect(),
    )
    .to_string()
}

/// Writes the generated crate into `gen_dir`. Unchanged files are left alone so a no-change
/// build is a no-op for cargo.
pub fn write(gen_dir: &Path, files: &[(&'static str, Vec<u8>)]) -> anyhow::Result<()> {
    std::fs::create_dir_all(gen_dir).with_context(|| format!("creating {}", gen_dir.display()))?;
    for (name, content) in files {
        let path = gen_dir.join(name);
        if std::fs::read(&path).is_ok_and(|existing| existing == *content) {
            continue;
        }
        write_atomic(&path, content, None)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// The generated crate's build script, compiled here for its unit tests.
#[cfg(test)]
#[allow(dead_code)]
#[path = "../../templates/gateway/build.rs"]
mod build_script;

#[cfg(test)]
mod build_script_tests {
    use super::build_script::link_flags;

    #[test]
    fn only_the_link_settings_of_the_users_flags_reach_the_probe() {
        let encoded = [
            "-C",
            "opt-level=3",
            "-Clinker=clang",
            "-C",
            "link-arg=-fuse-ld=mold",
            "--codegen=link-args=-Wl,-O1",
            "--codegen",
            "linker-flavor=gcc",
            "-Cprofile-use=/p/x.profdata",
            "--cfg",
            "linker_check",
            "",
            "-C",
        ]
        .join("\u{1f}");
        assert_eq!(
            link_flags(&encoded),
            [
                "-Clinker=clang",
                "-Clink-arg=-fuse-ld=mold",
                "-Clink-args=-Wl,-O1",
                "-Clinker-flavor=gcc"
            ]
        );
        assert!(link_flags("").is_empty());
    }

    #[test]
    fn the_switch_turns_packed_relocations_off_only_when_it_says_so() {
        use super::build_script::switched_off;
        for off in ["0", "false", "No", " OFF "] {
            assert!(switched_off(off), "{off:?}");
        }
        for on in ["1", "true", "yes", "", "auto"] {
            assert!(!switched_off(on), "{on:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mgw_runtime::model::{Api, Resource, MODEL_FORMAT};

    #[test]
    fn asked_for_parts_add_only_what_the_project_does_not_need() {
        use RuntimeFeature::*;
        assert_eq!(
            extra_features(&["storage", "redis"], &[All]),
            ["validation", "otlp"]
        );
        assert_eq!(
            extra_features(&[], &[Redis, Redis, Otlp]),
            ["redis", "otlp"]
        );
        assert!(extra_features(&["otlp"], &[Otlp]).is_empty());
        assert!(extra_features(&["validation"], &[]).is_empty());
        // Each part is one of the runtime's optional features (the next test checks the
        // converse for `all`).
        let runtime: toml::Table =
            toml::from_str(include_str!("../../runtime-template/Cargo.toml")).unwrap();
        for part in [Storage, Validation, Otlp, Redis] {
            let [feature] = part.cargo_features() else {
                panic!("{part:?}")
            };
            assert!(runtime["features"].get(*feature).is_some(), "{feature}");
            assert!(All.cargo_features().contains(feature), "{feature}");
        }
    }

    #[test]
    fn projects_needing_the_same_features_share_one_base_gateway() {
        let runtime = Path::new("/cache/runtime/0.1.0-abc");
        let (name, files) = render_base(&["redis", "mimalloc"], runtime).unwrap();
        assert!(name.starts_with("mgw-base-") && name.len() == "mgw-base-".len() + 16);
        // The order in which the features were gathered, and repeats, do not matter.
        let (same, _) = render_base(&["mimalloc", "redis", "mimalloc"], runtime).unwrap();
        assert_eq!(name, same);
        // Other features, or another runtime, are another base.
        let (other, _) = render_base(&["mimalloc"], runtime).unwrap();
        assert_ne!(name, other);
        let (newer, _) = render_base(
            &["redis", "mimalloc"],
            Path::new("/cache/runtime/0.2.0-def"),
        )
        .unwrap();
        assert_ne!(name, newer);
        let text = |name: &str| {
            String::from_utf8(files.iter().find(|(n, _)| *n == name).unwrap().1.clone()).unwrap()
        };
        // No project in it: a main that reads the attached model, no model.json.
        assert!(text("main.rs").contains("mgw_runtime::launch_attached()"));
        assert!(!text("main.rs").contains("include_bytes"));
        assert!(!files.iter().any(|(n, _)| *n == "model.json"));
        let manifest: toml::Value = toml::from_str(&text("Cargo.toml")).unwrap();
        assert_eq!(manifest["bin"][0]["name"].as_str(), Some(name.as_str()));
        let features = manifest["features"]["default"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().unwrap())
            .collect::<Vec<_>>();
        assert_eq!(features, ["mimalloc", "redis"]);
    }

    #[test]
    fn untrusted_names_stay_out_of_rust_source() {
        let evil = r#"x"); std::process::exit(1); ("#;
        let model = GatewayModel {
            format: MODEL_FORMAT,
            project: "p".into(),
            apis: vec![Api {
                id: "api_1".into(),
                name: evil.into(),
                version: "1".into(),
                base_path: format!("/{evil}"),
                source: "a.yaml".into(),
                resources: vec![Resource {
                    method: "GET".into(),
                    path: "/\"}\n".into(),
                    operation_id: None,
                    production: None,
                    sandbox: None,
                    security: None,
                    pipeline: 0,
                }],
                allow_encoded_slash: false,
            }],
            endpoints: vec![],
            pipelines: vec![],
            express: vec![],
        };
        let files = render(&model, "p", Path::new("/cache/runtime/\"quoted\" dir")).unwrap();
        let text = |name: &str| {
            String::from_utf8(files.iter().find(|(n, _)| *n == name).unwrap().1.clone()).unwrap()
        };
        assert!(!text("main.rs").contains(evil));
        let manifest: toml::Table =
            toml::from_str(&text("Cargo.toml")).expect("the manifest is valid TOML");
        assert_eq!(
            manifest["dependencies"]["mgw-runtime"]["path"].as_str(),
            Some("/cache/runtime/\"quoted\" dir")
        );
        assert_eq!(manifest["bin"][0]["name"].as_str(), Some("p"));
        assert!(manifest["dependencies"]["mgw-runtime"]
            .get("features")
            .is_none());
        let round_trip = GatewayModel::from_json(
            files
                .iter()
                .find(|(n, _)| *n == "model.json")
                .unwrap()
                .1
                .as_slice(),
        )
        .unwrap();
        assert_eq!(round_trip, model);
    }

    #[test]
    fn the_storage_plugin_turns_on_the_storage_feature() {
        let mut model = GatewayModel {
            format: MODEL_FORMAT,
            project: "p".into(),
            apis: vec![],
            endpoints: vec![],
            pipelines: vec![],
            express: vec![serde_json::from_value(serde_json::json!({
                "source": "express-gateway/gateway.config.yml",
                "routes": [],
                "storage": {"path": "/s3", "providers": []}
            }))
            .unwrap()],
        };
        let manifest = |model: &GatewayModel| -> toml::Table {
            let files = render(model, "p", Path::new("/cache/runtime")).unwrap();
            let text = String::from_utf8(files[0].1.clone()).unwrap();
            toml::from_str(&text).unwrap()
        };
        let storage = toml::Value::Array(vec![toml::Value::String("storage".into())]);
        assert_eq!(manifest(&model)["features"]["default"], storage);
        let with_storage = package_estimate(&runtime_features(&model));
        model.express[0].storage = None;
        assert_eq!(
            manifest(&model)["features"]["default"],
            toml::Value::Array(vec![])
        );
        // The estimate leaves out what only the storage feature brings.
        assert!(package_estimate(&runtime_features(&model)) + 2 <= with_storage);
    }

    #[test]
    fn an_otlp_endpoint_in_the_settings_turns_on_the_otlp_feature() {
        let mut config = mgw_runtime::config::RuntimeConfig::default();
        assert!(settings_features(&config).is_empty());
        config.tracing.otlp_endpoint = "http://collector:4318".into();
        assert_eq!(settings_features(&config), ["otlp"]);
        let model = GatewayModel {
            format: MODEL_FORMAT,
            project: "p".into(),
            apis: vec![],
            endpoints: vec![],
            pipelines: vec![],
            express: vec![],
        };
        let files = render_with_features(&model, &["otlp"], "p", Path::new("/r")).unwrap();
        let manifest: toml::Table =
            toml::from_str(&String::from_utf8(files[0].1.clone()).unwrap()).unwrap();
        assert_eq!(
            manifest["features"]["default"],
            toml::Value::Array(vec![toml::Value::String("otlp".into())])
        );
        // The estimate counts the OpenTelemetry crates only for a project that takes them.
        assert!(package_estimate(&[]) + 5 <= package_estimate(&["otlp"]));
    }

    /// Issue 11: only projects whose settings name Redis compile the Redis client.
    #[test]
    fn a_redis_setting_turns_on_the_redis_feature() {
        let features = |toml: &str| {
            let config =
                mgw_runtime::config::parse(toml, Path::new("conf/micro-gw.toml"), &[], &[])
                    .unwrap();
            settings_features(&config)
        };
        assert!(features("").is_empty());
        // The template's defaults: an empty URL, a namespace, what to do on errors.
        assert!(features(
            "[store]\nredis = \"\"\nredis_namespace = \"EG\"\n[rate_limit]\nbackend = \"auto\"\non_redis_error = \"closed\"\n"
        )
        .is_empty());
        for named in [
            "[store]\nredis = \"redis://redis:6379/0\"\n",
            // Through a variable, whatever it holds (or not) when the gateway starts.
            "[store]\nredis = \"${REDIS_URL}\"\n",
            "[store]\nredis_password_env = \"REDIS_PASSWORD\"\n",
            "[store]\nredis_ca = \"tls/redis-ca.pem\"\n",
            "[rate_limit]\nredis = \"redis+cluster://10.0.0.1:7000\"\n",
            "[rate_limit]\nbackend = \"redis\"\n",
        ] {
            assert_eq!(features(named), ["redis"], "{named}");
        }
        assert_eq!(
            features("[tracing]\notlp_endpoint = \"http://c:4318\"\n[store]\nredis = \"${R}\"\n"),
            ["otlp", "redis"]
        );
        // Express Gateway's db.redis: a server, not the emulated store.
        use crate::loader::express_gateway::StoreMapping;
        assert!(system_features(None).is_empty());
        assert!(system_features(Some(&StoreMapping::Embedded)).is_empty());
        let server = StoreMapping::Redis {
            url: "redis://${REDIS_HOST}:6379".into(),
            password_env: String::new(),
            namespace: "EG".into(),
            ca: String::new(),
        };
        assert_eq!(system_features(Some(&server)), ["redis"]);
        // The estimate counts the Redis client's crates only for a project that takes them.
        assert!(package_estimate(&[]) + 10 <= package_estimate(&["redis"]));
    }

    /// Every optional feature of the runtime is forwarded by the generated manifest (else a
    /// project could not enable it) and named in `FEATURE_ROOTS` (else the estimate counts it).
    #[test]
    fn every_optional_runtime_feature_is_forwarded() {
        let runtime: toml::Table =
            toml::from_str(include_str!("../../runtime-template/Cargo.toml")).unwrap();
        let template = include_str!("../../templates/gateway/Cargo.toml");
        for feature in runtime["features"].as_table().unwrap().keys() {
            if ["default", "server", "store"].contains(&feature.as_str()) {
                continue;
            }
            if feature == "mimalloc" {
                // Not a part `--features` names: `--allocator` chooses it.
                assert!(template.contains("\nmimalloc = [\"mgw-runtime/mimalloc\"]"));
                assert_eq!(Allocator::Mimalloc.cargo_feature(), Some("mimalloc"));
                assert_eq!(Allocator::System.cargo_feature(), None);
                assert_eq!(Allocator::default(), Allocator::Mimalloc);
                assert!(!RuntimeFeature::All.cargo_features().contains(&"mimalloc"));
                assert!(FEATURE_ROOTS.iter().any(|(name, _)| name == feature));
                continue;
            }
            if feature == crate::rustc_wrapper::FEATURE {
                // Not a part either: `--profile-generate` and `--profile-use` turn it on for
                // cargo, with the rustc wrapper. It compiles no crate of its own.
                assert!(template.contains("\nprofile-guided = [\"mgw-runtime/profile-guided\"]"));
                assert_eq!(
                    runtime["features"][feature.as_str()],
                    toml::Value::Array(Vec::new())
                );
                assert!(!RuntimeFeature::All
                    .cargo_features()
                    .contains(&feature.as_str()));
                continue;
            }
            // (Pins of its own may follow: `storage = ["mgw-runtime/storage", ...]`.)
            assert!(
                template.contains(&format!("\n{feature} = [\"mgw-runtime/{feature}\"")),
                "templates/gateway/Cargo.toml does not forward `{feature}`"
            );
            assert!(
                RuntimeFeature::All
                    .cargo_features()
                    .contains(&feature.as_str()),
                "`micro-gw build --features all` does not name `{feature}`"
            );
            assert!(
                FEATURE_ROOTS.iter().any(|(name, _)| name == feature),
                "FEATURE_ROOTS does not name `{feature}`"
            );
        }
    }

    #[test]
    fn the_estimate_counts_the_gateways_packages() {
        let all = PINNED_LOCK.matches("[[package]]").count() as u64;
        let estimate = package_estimate(&[]);
        assert!(estimate > 100 && estimate < all, "{estimate} of {all}");
        // mimalloc and its C library's crate, counted when the allocator is compiled in.
        assert_eq!(package_estimate(&["mimalloc"]), estimate + 2);
    }
}
