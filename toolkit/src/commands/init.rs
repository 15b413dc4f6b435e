//! `micro-gw init <project> [-f] [-a <definition>] [-d <deployment-config>]`

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use crate::certificate;
use crate::fetch;
use crate::fsutil::write_atomic;
use crate::loader::{self, SourceFile};
use crate::project::Project;

const MICRO_GW_TOML: &str = include_str!("../../../templates/project/micro-gw.toml");
const DEPLOYMENT_CONFIG: &str = include_str!("../../../templates/project/deployment-config.toml");
const POLICIES: &str = include_str!("../../../templates/project/policies.yaml");

/// Options of `init`.
#[derive(Debug)]
pub struct InitOptions {
    /// The project directory.
    pub project: PathBuf,
    /// Replace an existing project.
    pub force: bool,
    /// A first API definition (path or URL).
    pub api_definition: Option<String>,
    /// A deployment configuration to use instead of the default.
    pub deployment_config: Option<PathBuf>,
    /// Skip certificate checks when downloading the definition.
    pub insecure: bool,
}

/// Creates the project. Everything is prepared in a temporary directory beside it and moved
/// into place at the end, so a failure leaves no half-made project (and, with `-f`, the old one).
pub fn run(options: &InitOptions) -> anyhow::Result<()> {
    let project = Project::from_arg(&options.project)?;
    if project.root.exists() && !options.force {
        bail!(
            "Project name `{}` already exist. use -f or --force to forcefully update the project directory.",
            project.root.display()
        );
    }
    // Everything that can fail on user input is checked before anything is written.
    let definition = match &options.api_definition {
        Some(source) => {
            let fetched = fetch::fetch(source, options.insecure)?;
            let file = SourceFile {
                name: format!(
                    "{}/api_definitions/{}",
                    project.root.display(),
                    fetched.file_name
                ),
                text: fetched.text,
            };
            match loader::load(&project.name, std::slice::from_ref(&file)) {
                Ok(loaded) => super::print_warnings(&loaded.warnings),
                Err(failed) => {
                    super::print_warnings(&failed.warnings);
                    bail!(
                        "{source} is not a valid API definition, so no project was created:\n{}",
                        failed.error
                    );
                }
            }
            Some((fetched.file_name, file.text))
        }
        None => None,
    };
    let deployment = match &options.deployment_config {
        Some(path) => Some(read_deployment_config(path)?),
        None => None,
    };

    let parent = match project.root.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).with_context(|| format!("creating {}", parent.display()))?;
    let staging = tempfile::Builder::new()
        .prefix(&format!(".{}.init-", project.name))
        .tempdir_in(&parent)
        .with_context(|| format!("creating a temporary directory in {}", parent.display()))?;
    let staged = Project {
        root: staging.path().to_path_buf(),
        name: project.name.clone(),
    };
    let fingerprint = write_skeleton(&staged, definition.as_ref(), deployment.as_deref())?;
    install(staging, &project.root)?;

    println!("Project '{}' is initialized successfully.", project.name);
    println!("TLS: a self-signed development certificate is in {} (SHA-256 {fingerprint}); replace it for production.", project.tls_dir().display());
    let name = project.root.display();
    if let Some((file, _)) = &definition {
        println!(
            "API definition: {}",
            project.api_definitions().join(file).display()
        );
        println!("(Use \"micro-gw build {name}\" to build the project)");
    } else {
        println!("(Use \"micro-gw import {name} --openapi <file|URL>\" or copy definitions into {}, then \"micro-gw build {name}\")", project.api_definitions().display());
    }
    Ok(())
}

fn read_deployment_config(path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        anyhow::anyhow!(
            "Error while reading deployment configuration file: {e}. Probably the file path '{}' is invalid.",
            path.display()
        )
    })?;
    toml::from_str::<toml::Table>(&text).map_err(|e| {
        anyhow::anyhow!(
            "Error while reading deployment configuration file {}: {}. The content is invalid TOML.",
            path.display(),
            e.message()
        )
    })?;
    Ok(text)
}

fn write_skeleton(
    project: &Project,
    definition: Option<&(String, String)>,
    deployment: Option<&str>,
) -> anyhow::Result<String> {
    for dir in [
        project.api_definitions(),
        project.interceptors(),
        project.tls_dir(),
    ] {
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    write_atomic(&project.api_definitions().join(".keep"), b"", None)?;
    write_atomic(&project.interceptors().join(".keep"), b"", None)?;
    write_atomic(&project.config_file(), MICRO_GW_TOML.as_bytes(), None)?;
    write_atomic(
        &project.deployment_config(),
        deployment.unwrap_or(DEPLOYMENT_CONFIG).as_bytes(),
        None,
    )?;
    write_atomic(&project.policies(), POLICIES.as_bytes(), None)?;
    if let Some((file, text)) = definition {
        write_atomic(&project.api_definitions().join(file), text.as_bytes(), None)?;
    }
    let apikey = project.conf_dir().join("apikey");
    certificate::write_apikey_signing_pair(
        &apikey.join("signing-cert.pem"),
        &apikey.join("signing-key.pem"),
    )?;
    let tls = project.tls_dir();
    certificate::write_self_signed(&tls.join("cert.pem"), &tls.join("key.pem"))
}

/// Moves the staged project into place, replacing (with `-f`) an existing one.
fn install(staging: tempfile::TempDir, target: &Path) -> anyhow::Result<()> {
    let staged = staging.keep();
    if !target.exists() {
        return std::fs::rename(&staged, target)
            .with_context(|| format!("creating {}", target.display()));
    }
    let parent = staged.parent().unwrap_or(Path::new("."));
    let old = tempfile::Builder::new()
        .prefix(".micro-gw-old-")
        .tempdir_in(parent)
        .context("preparing to replace the project")?
        .keep();
    let old_project = old.join("project");
    std::fs::rename(target, &old_project)
        .with_context(|| format!("moving the old {} aside", target.display()))?;
    if let Err(err) = std::fs::rename(&staged, target) {
        let _ = std::fs::rename(&old_project, target);
        let _ = std::fs::remove_dir_all(&staged);
        return Err(err).with_context(|| format!("replacing {}", target.display()));
    }
    std::fs::remove_dir_all(&old)
        .with_context(|| format!("removing the old project copy {}", old.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_template_is_every_default() {
        let parsed =
            mgw_runtime::config::parse(MICRO_GW_TOML, Path::new("micro-gw.toml"), &[], &[])
                .unwrap();
        assert_eq!(parsed, mgw_runtime::config::RuntimeConfig::default());
        // Every key is present, so users see each setting with its comment.
        let table: toml::Table = toml::from_str(MICRO_GW_TOML).unwrap();
        let defaults =
            toml::Table::try_from(mgw_runtime::config::RuntimeConfig::default()).unwrap();
        let has_comment = |key: &str, from: usize| {
            let at = from + MICRO_GW_TOML[from..].find(&format!("\n{key} = ")).unwrap();
            let before = MICRO_GW_TOML[..at].lines().last().unwrap();
            before.trim_start().starts_with('#')
        };
        for (section, keys) in &defaults {
            for (key, default) in keys.as_table().unwrap() {
                match default {
                    // Arrays of tables are shown as commented examples, since an empty
                    // `users = []` would clash with the `[[security.users]]` users add.
                    toml::Value::Array(items)
                        if items.is_empty()
                            && !table[section].as_table().unwrap().contains_key(key) =>
                    {
                        assert!(
                            MICRO_GW_TOML.contains(&format!("#   [[{section}.{key}]]")),
                            "{section}.{key} has no commented example"
                        );
                    }
                    toml::Value::Table(sub) => {
                        let header = format!("\n[{section}.{key}]\n");
                        let from = MICRO_GW_TOML.find(&header).unwrap_or_else(|| {
                            panic!("[{section}.{key}] missing from the template")
                        });
                        for sub_key in sub.keys() {
                            assert!(
                                table[section][key]
                                    .as_table()
                                    .unwrap()
                                    .contains_key(sub_key),
                                "{section}.{key}.{sub_key} missing from the template"
                            );
                            assert!(
                                has_comment(sub_key, from),
                                "{section}.{key}.{sub_key} has no comment"
                            );
                        }
                    }
                    _ => {
                        assert!(
                            table[section].as_table().unwrap().contains_key(key),
                            "{section}.{key} missing from the template"
                        );
                        assert!(has_comment(key, 0), "{section}.{key} has no comment");
                    }
                }
            }
        }
        // Optional blocks are documented as commented examples.
        for block in [
            "[security.key_manager]",
            "[security.api_keys]",
            "[security.apikey_issuer]",
        ] {
            assert!(MICRO_GW_TOML.contains(&format!("#   {block}")), "{block}");
        }
    }

    #[test]
    fn policies_have_the_wso2_default_tiers() {
        let value: serde_json::Value = serde_yaml::from_str(POLICIES).unwrap();
        let names = |list: &str| -> Vec<String> {
            value[list]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p.as_object().unwrap().keys().next().unwrap().clone())
                .collect()
        };
        assert_eq!(
            names("resourcePolicies"),
            ["50kPerMin", "20kPerMin", "10kPerMin"]
        );
        assert_eq!(
            names("applicationPolicies"),
            ["50PerMin", "20PerMin", "10PerMin"]
        );
        assert_eq!(
            names("subscriptionPolicies"),
            ["Gold", "Silver", "Bronze", "Unauthenticated", "Default"]
        );
    }
}
