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
    /// Re-initialize an existing micro-gw project (never anything else).
    pub force: bool,
    /// With `force`: also replace `conf/` and `policies.yaml` with the defaults and new keys.
    pub reset_conf: bool,
    /// A first API definition (path or URL).
    pub api_definition: Option<String>,
    /// A deployment configuration to use instead of the default.
    pub deployment_config: Option<PathBuf>,
    /// Skip certificate checks when downloading the definition.
    pub insecure: bool,
}

/// What is at the project path before `init` runs.
#[derive(Debug, PartialEq, Eq)]
pub enum Existing {
    /// Nothing: a new project is created.
    Nothing,
    /// An empty directory: a new project is created in it.
    EmptyDirectory,
    /// A micro-gw project (see [`crate::project::is_project`]).
    Project,
    /// Something micro-gw did not make: never changed. Holds the first few entry names.
    Other(Vec<String>),
}

/// Looks at the project path; `Other` lists at most 10 entries, then `… (N in all)`.
pub fn existing(dir: &Path) -> std::io::Result<Existing> {
    let meta = match std::fs::symlink_metadata(dir) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Existing::Nothing),
        Err(e) => return Err(e),
    };
    if !meta.is_dir() {
        return Ok(Existing::Other(Vec::new()));
    }
    if crate::project::is_project(dir) {
        return Ok(Existing::Project);
    }
    let mut names: Vec<String> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            if e.path().is_dir() {
                format!("{name}/")
            } else {
                name
            }
        })
        .collect();
    if names.is_empty() {
        return Ok(Existing::EmptyDirectory);
    }
    names.sort();
    let total = names.len();
    if total > 10 {
        names.truncate(10);
        names.push(format!("… ({total} entries in all)"));
    }
    Ok(Existing::Other(names))
}

/// Creates the project, or (with `-f`) re-initializes an existing micro-gw project without
/// deleting anything: see [`reinitialize`]. A path that holds anything else is refused, with
/// or without `-f`. A new project is prepared in a temporary directory beside it and moved
/// into place at the end, so a failure leaves no half-made project.
pub fn run(options: &InitOptions) -> anyhow::Result<()> {
    let project = Project::from_arg(&options.project)?;
    let root = project.root.display().to_string();
    let found = existing(&project.root).with_context(|| format!("reading {root}"))?;
    match &found {
        Existing::Other(entries) if entries.is_empty() => bail!(
            "{root} exists and is not a directory, so it cannot be a project: choose another project path"
        ),
        Existing::Other(entries) => bail!(
            "{root} already exists and is not a micro-gw project (it has no conf/micro-gw.toml); it holds: {}. micro-gw init never changes a directory it did not create{}: choose a new project path, or an empty directory",
            entries.join(", "),
            if options.force { ", even with -f" } else { "" }
        ),
        Existing::Project if !options.force => bail!(
            "Project name `{root}` already exist. use -f or --force to forcefully update the project directory. (-f keeps your definitions, conf and keys and says what it would replace; add --reset-conf to replace conf/ with the defaults)"
        ),
        _ => {}
    }
    if options.reset_conf && found != Existing::Project {
        bail!("--reset-conf re-initializes the conf/ of an existing project, and {root} is not one yet: leave it out");
    }
    // Everything that can fail on user input is checked before anything is written.
    let definition = match &options.api_definition {
        Some(source) => {
            let fetched = fetch::fetch(source, options.insecure)?;
            // Messages name the file (or URL) the user gave: the project does not exist yet.
            let file = SourceFile {
                name: source.clone(),
                text: fetched.text,
            };
            let mut files = vec![file.clone()];
            if found == Existing::Project {
                // Checked with the project's other definitions, as `import` does.
                let copy = project.display(&project.api_definitions().join(&fetched.file_name));
                files.extend(
                    project
                        .definition_files()
                        .with_context(|| format!("reading the definitions of {root}"))?
                        .into_iter()
                        .filter(|f| f.name != copy),
                );
            }
            match loader::load(&project.name, &files) {
                Ok(loaded) => super::print_changed_warnings(
                    &loaded.warnings,
                    &|f| f == file.name,
                    false,
                    &project.root,
                ),
                Err(failed) => {
                    super::print_changed_warnings(
                        &failed.warnings,
                        &|f| f == file.name,
                        false,
                        &project.root,
                    );
                    bail!(
                        "{source} is not a valid API definition, so {}:\n{}",
                        if found == Existing::Project {
                            "the project is unchanged"
                        } else {
                            "no project was created"
                        },
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
    if found == Existing::Project {
        return reinitialize(
            &project,
            definition.as_ref(),
            deployment.as_deref(),
            options.reset_conf,
        );
    }

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

/// One file `init -f` writes, and why.
struct Change {
    path: PathBuf,
    contents: Vec<u8>,
    mode: Option<u32>,
    why: String,
}

/// `init -f` on a micro-gw project. It deletes nothing: it writes the definition given with
/// `-a` and the deployment configuration given with `-d`, creates what of the skeleton is
/// missing, and with `reset_conf` replaces `conf/micro-gw.toml`, `conf/deployment-config.toml`,
/// `policies.yaml`, the TLS certificate and the API-key signing pair with the defaults and new
/// keys. Every file that would be replaced is listed first; on a terminal the user is asked
/// (default: no), elsewhere `-f` is the answer. Definitions, `interceptors/`, `target/` and
/// anything else in the directory are never touched. All files change together or none does.
pub fn reinitialize(
    project: &Project,
    definition: Option<&(String, String)>,
    deployment: Option<&str>,
    reset_conf: bool,
) -> anyhow::Result<()> {
    let mut changes: Vec<Change> = Vec::new();
    let mut kept: Vec<PathBuf> = Vec::new();
    let mut plan = |path: PathBuf, contents: Vec<u8>, mode: Option<u32>, given: Option<&str>| {
        let exists = path.exists();
        match given {
            Some(why) => changes.push(Change {
                path,
                contents,
                mode,
                why: why.to_string(),
            }),
            None if !exists => changes.push(Change {
                path,
                contents,
                mode,
                why: "missing".into(),
            }),
            None => kept.push(path),
        }
    };
    let reset = reset_conf.then_some("--reset-conf");
    if let Some((file, text)) = definition {
        plan(
            project.api_definitions().join(file),
            text.as_bytes().to_vec(),
            None,
            Some("-a"),
        );
    }
    plan(
        project.config_file(),
        MICRO_GW_TOML.as_bytes().to_vec(),
        None,
        reset,
    );
    match deployment {
        Some(text) => plan(
            project.deployment_config(),
            text.as_bytes().to_vec(),
            None,
            Some("-d"),
        ),
        None => plan(
            project.deployment_config(),
            DEPLOYMENT_CONFIG.as_bytes().to_vec(),
            None,
            reset,
        ),
    }
    plan(
        project.policies(),
        POLICIES.as_bytes().to_vec(),
        None,
        reset,
    );
    for dir in [project.api_definitions(), project.interceptors()] {
        if !dir.is_dir() {
            plan(dir.join(".keep"), Vec::new(), None, None);
        }
    }
    // Keys: made in a temporary directory, written with the rest when needed.
    let keys = tempfile::tempdir().context("creating a temporary directory for new keys")?;
    let fingerprint = certificate::write_self_signed(
        &keys.path().join("cert.pem"),
        &keys.path().join("key.pem"),
    )?;
    certificate::write_apikey_signing_pair(
        &keys.path().join("signing-cert.pem"),
        &keys.path().join("signing-key.pem"),
    )?;
    let apikey = project.conf_dir().join("apikey");
    let tls_pair = [
        (project.tls_dir().join("cert.pem"), "cert.pem", None),
        (project.tls_dir().join("key.pem"), "key.pem", Some(0o600)),
    ];
    let apikey_pair = [
        (apikey.join("signing-cert.pem"), "signing-cert.pem", None),
        (
            apikey.join("signing-key.pem"),
            "signing-key.pem",
            Some(0o600),
        ),
    ];
    let mut new_tls = false;
    for (is_tls, pair) in [(true, &tls_pair), (false, &apikey_pair)] {
        // A pair changes together: a key never sits beside another key's certificate, and a
        // key the user has is never replaced without --reset-conf.
        let present = pair.iter().filter(|(path, _, _)| path.exists()).count();
        let why = match (reset, present) {
            (Some(reset), _) => Some(reset),
            (None, 0) => Some("missing"),
            (None, 1) => {
                eprintln!(
                    "micro-gw: warning: {} and {} are an incomplete pair, kept as they are; --reset-conf makes a new pair",
                    pair[0].0.display(),
                    pair[1].0.display()
                );
                None
            }
            (None, _) => None,
        };
        for (path, name, mode) in pair.iter() {
            match why {
                Some(why) => {
                    new_tls |= is_tls;
                    changes.push(Change {
                        path: path.clone(),
                        contents: std::fs::read(keys.path().join(name))?,
                        mode: *mode,
                        why: why.to_string(),
                    })
                }
                None if path.exists() => kept.push(path.clone()),
                None => {}
            }
        }
    }

    let replaced: Vec<&Change> = changes.iter().filter(|c| c.path.exists()).collect();
    println!(
        "micro-gw init -f: '{}' is a micro-gw project; nothing in it is deleted.",
        project.name
    );
    for change in &changes {
        let verb = if change.path.exists() {
            "replace"
        } else {
            "create "
        };
        println!("  {verb} {} ({})", change.path.display(), change.why);
    }
    let definitions = project.definition_files().map(|f| f.len()).unwrap_or(0);
    println!(
        "  keep    {} ({definitions} definition(s)), {}, everything else in {}",
        project.api_definitions().display(),
        if kept.is_empty() {
            "nothing else micro-gw made".to_string()
        } else {
            kept.iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        },
        project.root.display()
    );
    if !reset_conf {
        println!("  (add --reset-conf to replace conf/ and policies.yaml with the defaults and new keys)");
    }
    if changes.is_empty() {
        println!("Project '{}' is complete: nothing to change.", project.name);
        return Ok(());
    }
    if !replaced.is_empty() && interactive() {
        let proceed = dialoguer::Confirm::new()
            .with_prompt(format!("Replace {} file(s)?", replaced.len()))
            .default(false)
            .interact()
            .context("reading the answer")?;
        if !proceed {
            bail!("nothing was changed");
        }
    }
    for mode in [None, Some(0o600)] {
        let group: Vec<(PathBuf, Vec<u8>)> = changes
            .iter()
            .filter(|c| c.mode == mode)
            .map(|c| (c.path.clone(), c.contents.clone()))
            .collect();
        if !group.is_empty() {
            crate::fsutil::write_all_atomic(&group, mode)
                .with_context(|| format!("updating {}", project.root.display()))?;
        }
    }
    println!(
        "Project '{}' is re-initialized: {} file(s) replaced, {} created.",
        project.name,
        replaced.len(),
        changes.len() - replaced.len()
    );
    if new_tls {
        println!("TLS: a new self-signed development certificate is in {} (SHA-256 {fingerprint}); replace it for production.", project.tls_dir().display());
    }
    println!(
        "(Use \"micro-gw build {}\" to build the project)",
        project.root.display()
    );
    Ok(())
}

/// True when a person can answer a question (stdin and stderr are terminals).
fn interactive() -> bool {
    use std::io::IsTerminal;
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// Reads and checks a deployment configuration given with `-d` (WSO2's messages).
pub(crate) fn read_deployment_config(path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        anyhow::anyhow!(
            "Error while reading deployment configuration file: {e}. Probably the file path '{}' is invalid.",
            path.display()
        )
    })?;
    crate::deploy::config::parse(&text, &path.display().to_string()).map_err(|e| {
        anyhow::anyhow!(
            "Error while reading deployment configuration file: {e}. The content is invalid."
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

/// Moves the staged project into place: where nothing is, or over an empty directory.
fn install(staging: tempfile::TempDir, target: &Path) -> anyhow::Result<()> {
    let staged = staging.keep();
    // An empty directory is taken over (`remove_dir` fails unless it is empty).
    if target.is_dir() {
        std::fs::remove_dir(target).with_context(|| format!("using {}", target.display()))?;
    }
    if !target.exists() {
        return std::fs::rename(&staged, target)
            .with_context(|| format!("creating {}", target.display()));
    }
    let _ = std::fs::remove_dir_all(&staged);
    bail!(
        "{} appeared while the project was being prepared; nothing was changed there",
        target.display()
    )
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
