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

/// The lock file of generated crates on the runtime's default features (kept current by
/// `scripts/update-gateway-lock.sh`).
pub const PINNED_LOCK: &str = include_str!("../../templates/gateway/Cargo.lock");

/// The lock file of generated crates that enable the runtime's `storage` feature (cargo resolves
/// a path dependency's optional crates only with their feature, so it differs).
pub const PINNED_LOCK_STORAGE: &str = include_str!("../../templates/gateway/Cargo.storage.lock");

/// The pinned lock file for a model (see [`runtime_features`]).
pub fn pinned_lock(model: &GatewayModel) -> &'static str {
    if runtime_features(model).contains(&"storage") {
        PINNED_LOCK_STORAGE
    } else {
        PINNED_LOCK
    }
}

#[derive(Template)]
#[template(path = "gateway/Cargo.toml", escape = "none")]
struct Manifest<'a> {
    toolkit_version: &'a str,
    binary: &'a str,
    runtime_path_literal: String,
    /// `, features = [...]` when the model needs optional runtime features, else empty (the
    /// manifest of every other project stays the same).
    features: String,
}

#[derive(Template)]
#[template(path = "gateway/main.rs", escape = "none")]
struct Main;

/// The generated files, by name.
pub fn render(
    model: &GatewayModel,
    binary: &str,
    runtime_dir: &Path,
) -> anyhow::Result<Vec<(&'static str, Vec<u8>)>> {
    let runtime_path = runtime_dir
        .to_str()
        .context("the cache directory path is not valid UTF-8")?;
    let manifest = Manifest {
        toolkit_version: env!("CARGO_PKG_VERSION"),
        binary,
        // A TOML string literal, escaped by the TOML serializer.
        runtime_path_literal: toml::Value::String(runtime_path.to_string()).to_string(),
        features: features_literal(&runtime_features(model)),
    }
    .render()
    .context("rendering Cargo.toml")?;
    let main = Main.render().context("rendering main.rs")?;
    let model_json = serde_json::to_vec_pretty(model).context("serializing the gateway model")?;
    Ok(vec![
        ("Cargo.toml", manifest.into_bytes()),
        ("Cargo.lock", pinned_lock(model).as_bytes().to_vec()),
        ("main.rs", main.into_bytes()),
        ("model.json", model_json),
    ])
}

/// The optional features of `mgw-runtime` the model needs: `storage` when an Express Gateway
/// configuration declares Kargo's storage plugin. Projects without any keep sharing the runtime
/// compiled with its default features.
pub fn runtime_features(model: &GatewayModel) -> Vec<&'static str> {
    let mut features = Vec::new();
    if model.express.iter().any(|config| config.storage.is_some()) {
        features.push("storage");
    }
    features
}

fn features_literal(features: &[&str]) -> String {
    if features.is_empty() {
        return String::new();
    }
    let list = toml::Value::Array(
        features
            .iter()
            .map(|f| toml::Value::String((*f).to_string()))
            .collect(),
    );
    format!(", features = {list}")
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

#[cfg(test)]
mod tests {
    use super::*;
    use mgw_runtime::model::{Api, Resource, MODEL_FORMAT};

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
        assert_eq!(
            manifest(&model)["dependencies"]["mgw-runtime"]["features"],
            toml::Value::Array(vec![toml::Value::String("storage".into())])
        );
        let lock = |model: &GatewayModel| {
            let files = render(model, "p", Path::new("/cache/runtime")).unwrap();
            String::from_utf8(files[1].1.clone()).unwrap()
        };
        assert!(lock(&model).contains("name = \"aws-sigv4\""));
        model.express[0].storage = None;
        assert!(!lock(&model).contains("aws-sigv4"));
        assert!(manifest(&model)["dependencies"]["mgw-runtime"]
            .get("features")
            .is_none());
    }
}
