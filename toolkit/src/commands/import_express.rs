//! `micro-gw import <project> --express-gateway <gateway.config.yml> [--system-config <file>]`:
//! copies an Express Gateway configuration into `<project>/express-gateway/`, where it stays the
//! source of truth that `micro-gw build` translates (`loader::express_gateway`).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use crate::fsutil::write_and_remove_atomic;
use crate::loader::express_gateway::StoreMapping;
use crate::loader::{self, ExpressSource, LoadOptions, SourceFile};
use crate::project::{Project, EXPRESS_GATEWAY_FILES, EXPRESS_SYSTEM_FILES};

/// Options of `import --express-gateway`.
#[derive(Debug)]
pub struct ImportExpressOptions {
    /// The project directory.
    pub project: PathBuf,
    /// `gateway.config.yml` (or `.json`).
    pub gateway: PathBuf,
    /// `system.config.yml`, optional.
    pub system: Option<PathBuf>,
}

fn read(path: &Path, what: &str) -> anyhow::Result<String> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            bail!(
                "{what} {} does not exist: give the path of the file",
                path.display()
            )
        }
        Err(err) => bail!("cannot read {what} {}: {err}", path.display()),
    }
}

fn is_json(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
}

/// Validates the configuration together with the project (every build check, unsupported
/// policies allowed), then writes the copies in one atomic step: a failed import leaves the
/// project as it was.
pub fn run(options: &ImportExpressOptions) -> anyhow::Result<()> {
    let project = Project::existing(&options.project)?;
    let gateway_text = read(&options.gateway, "the Express Gateway configuration")?;
    let system_text = match &options.system {
        Some(path) => Some(read(path, "the system configuration")?),
        None => None,
    };
    // Messages name the files the user gave.
    let given = options.gateway.display().to_string();
    let source = ExpressSource {
        gateway: SourceFile {
            name: given.clone(),
            text: gateway_text.clone(),
        },
        system: options
            .system
            .as_ref()
            .zip(system_text.as_ref())
            .map(|(p, t)| SourceFile {
                name: p.display().to_string(),
                text: t.clone(),
            }),
    };
    let definitions = project
        .definition_files()
        .with_context(|| format!("reading the definitions of {}", project.root.display()))?;
    let load_options = LoadOptions {
        allow_unsupported: true,
        ports: super::build::conf_ports(&project),
        cors_default: super::build::cors_default(&project),
        policies: super::build::policies_source(&project),
        validation: super::build::validation_default(&project),
    };
    let is_given = |file: &str| {
        file == given
            || options
                .system
                .as_ref()
                .is_some_and(|s| s.display().to_string() == file)
    };
    let loaded =
        match loader::load_project(&project.name, &definitions, Some(&source), &load_options) {
            Ok(loaded) => loaded,
            Err(failed) => {
                super::print_changed_warnings(&failed.warnings, &is_given, false, &project.root);
                bail!(
                    "{} was not imported, and the project is unchanged:\n{}",
                    given,
                    failed.error
                );
            }
        };
    super::print_changed_warnings(&loaded.warnings, &is_given, false, &project.root);

    // Write: the gateway file under the name Express Gateway would look for, the other
    // spelling removed (one configuration per project); the system file only when given.
    let dir = project.express_gateway();
    let gateway_name = EXPRESS_GATEWAY_FILES[usize::from(is_json(&options.gateway))];
    let target = dir.join(gateway_name);
    let replacing = EXPRESS_GATEWAY_FILES.iter().any(|n| dir.join(n).is_file());
    let mut files = vec![(target.clone(), gateway_text.into_bytes())];
    let mut removals: Vec<PathBuf> = EXPRESS_GATEWAY_FILES
        .iter()
        .filter(|n| **n != gateway_name)
        .map(|n| dir.join(n))
        .collect();
    let system_target = match (&options.system, system_text) {
        (Some(path), Some(text)) => {
            let name = EXPRESS_SYSTEM_FILES[usize::from(is_json(path))];
            removals.extend(
                EXPRESS_SYSTEM_FILES
                    .iter()
                    .filter(|n| **n != name)
                    .map(|n| dir.join(n)),
            );
            files.push((dir.join(name), text.into_bytes()));
            Some(dir.join(name))
        }
        _ => None,
    };
    // `db.redis` of the system configuration becomes the project's `[store]`.
    let conf_path = project.root.join("conf").join("micro-gw.toml");
    let store_keys = match (&system_target, &loaded.store) {
        (Some(_), Some(mapping)) => Some(store_keys(mapping)),
        _ => None,
    };
    if let Some(keys) = &store_keys {
        let conf = std::fs::read_to_string(&conf_path)
            .with_context(|| format!("reading {}", conf_path.display()))?;
        let edited = set_table_keys(&conf, "store", keys);
        mgw_runtime::config::parse(&edited, &conf_path, &[], &[]).map_err(|e| {
            anyhow::anyhow!(
                "the [store] settings made from {} do not fit {}: {e}; nothing was imported",
                options
                    .system
                    .as_ref()
                    .map_or(String::new(), |p| p.display().to_string()),
                conf_path.display()
            )
        })?;
        files.push((conf_path.clone(), edited.into_bytes()));
    }
    let created_dir = !dir.exists();
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    if let Err(err) = write_and_remove_atomic(&files, &removals, None) {
        if created_dir {
            let _ = std::fs::remove_dir(&dir);
        }
        return Err(err).with_context(|| format!("writing {}", target.display()));
    }

    let eg = loaded
        .model
        .express
        .first()
        .context("the imported configuration is missing from the model")?;
    let pipelines = loaded
        .model
        .pipelines
        .iter()
        .filter(|p| p.dialect == mgw_runtime::model::Dialect::ExpressGateway)
        .count();
    let mut listeners = Vec::new();
    if let Some(http) = &eg.http {
        listeners.push(format!("http port {}", http.port));
    }
    if let Some(https) = &eg.https {
        listeners.push(format!("https port {}", https.listen.port));
    }
    if let Some(admin) = &eg.admin {
        listeners.push(format!("admin API port {}", admin.port));
    }
    println!(
        "{} Express Gateway configuration {} as {} ({} route(s), {} pipeline(s); {})",
        if replacing {
            "Replaced the"
        } else {
            "Imported"
        },
        given,
        target.display(),
        eg.routes.len(),
        pipelines,
        if listeners.is_empty() {
            "no listener".to_string()
        } else {
            listeners.join(", ")
        }
    );
    if let (Some(mapping), Some(_)) = (&loaded.store, &store_keys) {
        match mapping {
            StoreMapping::Embedded => println!(
                "Consumer store: db.redis.emulate is true, so the embedded store ([store] redis = \"\" in {})",
                conf_path.display()
            ),
            StoreMapping::Redis {
                url,
                password_env,
                namespace,
                ..
            } => println!(
                "Consumer store: Redis {} namespace {namespace:?}{} ([store] in {})",
                mgw_runtime::config::redact_url(url),
                if password_env.is_empty() {
                    String::new()
                } else {
                    format!(", password from ${password_env} at start-up")
                },
                conf_path.display()
            ),
        }
    }
    match system_target {
        Some(path) => println!("System configuration copied to {}", path.display()),
        None if dir.join(EXPRESS_SYSTEM_FILES[0]).is_file()
            || dir.join(EXPRESS_SYSTEM_FILES[1]).is_file() =>
        {
            println!(
                "The project's system configuration is kept (give --system-config to replace it)"
            )
        }
        None => {}
    }
    if !loaded.unsupported.is_empty() {
        println!(
            "micro-gw build will refuse {} step(s) of policies not supported yet; remove them, or build with --allow-unsupported to serve the rest, where each behaves as stated:",
            loaded.unsupported.len()
        );
        for step in &loaded.unsupported {
            println!("  {step}");
        }
    }
    println!(
        "(Use \"micro-gw build {}\" to build the project)",
        project.root.display()
    );
    Ok(())
}

/// The `[store]` keys of a `db.redis` mapping.
fn store_keys(mapping: &StoreMapping) -> Vec<(&'static str, String)> {
    match mapping {
        StoreMapping::Embedded => vec![
            ("redis", String::new()),
            ("redis_password_env", String::new()),
        ],
        StoreMapping::Redis {
            url,
            password_env,
            namespace,
            ca,
        } => vec![
            ("redis", url.clone()),
            ("redis_password_env", password_env.clone()),
            ("redis_namespace", namespace.clone()),
            ("redis_ca", ca.clone()),
        ],
    }
}

/// `text` (a TOML settings file) with `keys` of `[table]` set to the given strings: a key's
/// line is replaced where it is, a missing key is added at the end of the table, a missing
/// table at the end of the file. Comments and every other line are kept.
fn set_table_keys(text: &str, table: &str, keys: &[(&str, String)]) -> String {
    let quoted = |value: &str| toml::Value::String(value.to_string()).to_string();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let header = format!("[{table}]");
    let start = lines.iter().position(|l| l.trim() == header);
    let Some(start) = start else {
        let mut out = text.to_string();
        if !out.ends_with('\n') && !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&format!("\n{header}\n"));
        for (key, value) in keys {
            out.push_str(&format!("{key} = {}\n", quoted(value)));
        }
        return out;
    };
    let end = lines
        .iter()
        .skip(start + 1)
        .position(|l| l.trim_start().starts_with('['))
        .map_or(lines.len(), |i| start + 1 + i);
    let mut last_key = start;
    let mut missing = Vec::new();
    for (key, value) in keys {
        let at = (start + 1..end).find(|&i| {
            lines[i].split_once('=').is_some_and(|(name, _)| {
                name.trim() == *key && !lines[i].trim_start().starts_with('#')
            })
        });
        match at {
            Some(i) => {
                lines[i] = format!("{key} = {}", quoted(value));
                last_key = last_key.max(i);
            }
            None => missing.push(format!("{key} = {}", quoted(value))),
        }
    }
    for (i, line) in lines.iter().enumerate().take(end).skip(start + 1) {
        if !line.trim().is_empty() && !line.trim_start().starts_with('#') {
            last_key = last_key.max(i);
        }
    }
    for (offset, line) in missing.into_iter().enumerate() {
        lines.insert(last_key + 1 + offset, line);
    }
    let mut out = lines.join("\n");
    if text.ends_with('\n') {
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_keys_are_set_in_place_and_comments_kept() {
        let conf = "[listener]\nhttp_port = 9090\n\n[store]\n# the file\npath = \"x.db\"\nredis = \"\"\n\n[admin]\ntoken = \"\"\n";
        let keys = [
            ("redis", "redis://:${P}@h:6379".to_string()),
            ("redis_namespace", "EG".to_string()),
        ];
        let out = set_table_keys(conf, "store", &keys);
        assert_eq!(
            out,
            "[listener]\nhttp_port = 9090\n\n[store]\n# the file\npath = \"x.db\"\nredis = \"redis://:${P}@h:6379\"\nredis_namespace = \"EG\"\n\n[admin]\ntoken = \"\"\n"
        );
        let appended = set_table_keys("[listener]\n", "store", &keys);
        assert!(appended
            .ends_with("[store]\nredis = \"redis://:${P}@h:6379\"\nredis_namespace = \"EG\"\n"));
    }
}
