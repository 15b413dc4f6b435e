//! Deployment artefacts of a built gateway, from `conf/deployment-config.toml` (WSO2 API
//! Microgateway's file): `target/docker/` (a Dockerfile and its build context: the binary and
//! `conf/` without its secrets) and `target/kubernetes/` (Deployment, Service, ConfigMap,
//! optional HorizontalPodAutoscaler). Secrets are never copied into an image or a manifest:
//! the manifests refer to a Secret by name and the build prints the command that creates it.

pub mod config;
pub mod docker;
pub mod kubernetes;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use mgw_runtime::config::RuntimeConfig;
use mgw_runtime::model::GatewayModel;

use crate::project::Project;
pub use config::{DeploymentConfig, DeploymentConfigError};

/// Why the artefacts could not be written.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// `conf/deployment-config.toml` is wrong.
    #[error(transparent)]
    Config(#[from] DeploymentConfigError),
    /// `conf/micro-gw.toml` does not load, so the manifests cannot be derived from it.
    #[error(
        "{0} (the Docker and Kubernetes artefacts are derived from it: fix it and build again)"
    )]
    Settings(String),
    /// A file could not be read or written.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// Reading or writing.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// What `micro-gw build` asked for on its command line.
#[derive(Debug, Default, Clone)]
pub struct DeployOptions {
    /// `--docker`: write `target/docker/` even when `[docker.dockerConfig] enable = false`.
    pub docker: bool,
    /// `--kubernetes`: write `target/kubernetes/` even when
    /// `[kubernetes.kubernetesDeployment] enable = false`.
    pub kubernetes: bool,
    /// `--docker-image name[:tag]`: replaces `name` and `tag` (and implies `--docker`).
    pub image: Option<String>,
    /// `--docker-base-image image`: replaces `baseImage` (and implies `--docker`).
    pub base_image: Option<String>,
}

/// A file whose content is a secret, named by `conf/micro-gw.toml`: mounted from the Secret,
/// never copied into the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretFile {
    /// The setting that names it, e.g. `tls.private_key`.
    pub setting: String,
    /// The path as written (relative to `conf/`, or absolute).
    pub path: PathBuf,
    /// Its key in the Secret, e.g. `tls-key.pem`.
    pub key: String,
}

/// An environment variable whose value is a secret: set from the Secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretEnv {
    /// The variable, e.g. `MGW_KM_PASSWORD`.
    pub name: String,
    /// Its key in the Secret, e.g. `mgw-km-password`.
    pub key: String,
    /// The gateway starts without it (the file's value, or no feature).
    pub optional: bool,
    /// What it is, for the printed command.
    pub what: String,
}

/// Everything the generators need, resolved once.
pub struct Inputs<'a> {
    /// The project's name (the binary's file name).
    pub project: String,
    /// The compiled model.
    pub model: &'a GatewayModel,
    /// `conf/micro-gw.toml`, parsed.
    pub settings: RuntimeConfig,
    /// `conf/micro-gw.toml` as written (the ConfigMap's content).
    pub settings_text: String,
    /// The deployment configuration, with the command line applied.
    pub deployment: DeploymentConfig,
    /// Secret files.
    pub secret_files: Vec<SecretFile>,
    /// Secret variables.
    pub secret_env: Vec<SecretEnv>,
}

/// The image the gateway runs as: `[registry/]name:tag`.
pub fn image_reference(inputs: &Inputs<'_>) -> String {
    let docker = &inputs.deployment.docker.docker_config;
    let name = if docker.name.is_empty() {
        inputs.project.to_ascii_lowercase()
    } else {
        docker.name.clone()
    };
    let tag = if docker.tag.is_empty() {
        "v1"
    } else {
        &docker.tag
    };
    if docker.registry.is_empty() {
        format!("{name}:{tag}")
    } else {
        format!("{}/{name}:{tag}", docker.registry)
    }
}

/// The directory the gateway lives in inside the image: `/mgw/<project>` (its binary in
/// `target/`, its settings in `conf/`, as in the project, so the gateway finds
/// `conf/micro-gw.toml` beside its own folder without any variable).
pub fn image_home(project: &str) -> String {
    format!("/mgw/{project}")
}

/// Whether the project keeps consumers in the embedded file (Express Gateway configurations
/// without `[store] redis`): they are then per pod.
pub fn uses_file_store(inputs: &Inputs<'_>) -> bool {
    !inputs.model.express.is_empty() && inputs.settings.store.redis.is_empty()
}

/// The folder inside the image the gateway writes to, for Express Gateway projects: the
/// folder of `[store] path` (default `/mgw/<project>/data`), which holds the embedded consumer
/// store and the admin API's generated `admin.token` (written with Redis too).
pub fn data_dir(inputs: &Inputs<'_>) -> Option<String> {
    if inputs.model.express.is_empty() {
        return None;
    }
    let conf = Path::new(&image_home(&inputs.project)).join("conf");
    let store = conf.join(&inputs.settings.store.path);
    let mut parts: Vec<String> = Vec::new();
    for part in store.parent().unwrap_or(&conf).components() {
        match part {
            std::path::Component::ParentDir => {
                parts.pop();
            }
            std::path::Component::Normal(name) => parts.push(name.to_string_lossy().into_owned()),
            _ => {}
        }
    }
    Some(format!("/{}", parts.join("/")))
}

/// A Secret key from a path or variable: lowercase, `/` and `_` as `-`.
fn secret_key(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            '/' | '\\' | '_' => '-',
            c if c.is_ascii_alphanumeric() || c == '.' || c == '-' => c.to_ascii_lowercase(),
            _ => '-',
        })
        .collect::<String>()
        .trim_matches(['-', '.'])
        .to_string()
}

/// The secret files and variables `conf/micro-gw.toml` names; an error when the file holds a
/// secret itself (it becomes a ConfigMap, which is not for secrets).
pub fn secrets(
    settings: &RuntimeConfig,
    text: &str,
    shown: &str,
    has_express: bool,
) -> Result<(Vec<SecretFile>, Vec<SecretEnv>), DeploymentConfigError> {
    let mut files = Vec::new();
    let mut env = Vec::new();
    let mut file = |setting: &str, path: &Path| {
        let key = secret_key(&path.to_string_lossy());
        if !files.iter().any(|f: &SecretFile| f.path == path) {
            files.push(SecretFile {
                setting: setting.to_string(),
                path: path.to_path_buf(),
                key,
            });
        }
    };
    if settings.listener.https_enabled {
        file("tls.private_key", &settings.tls.private_key);
    }
    if let Some(issuer) = &settings.security.apikey_issuer {
        file("security.apikey_issuer.private_key", &issuer.private_key);
    }
    for issuer in &settings.security.jwt_issuers {
        if let Some(path) = &issuer.hmac_secret_file {
            file("security.jwt_issuers.hmac_secret_file", path);
        }
    }
    if let Some(km) = &settings.security.key_manager {
        if let Some(path) = &km.password_file {
            file("security.key_manager.password_file", path);
        }
    }
    let mut var = |name: &str, optional: bool, what: &str| {
        if !env.iter().any(|e: &SecretEnv| e.name == name) {
            env.push(SecretEnv {
                name: name.to_string(),
                key: secret_key(name),
                optional,
                what: what.to_string(),
            });
        }
    };
    for issuer in &settings.security.jwt_issuers {
        if let Some(name) = &issuer.hmac_secret_env {
            var(
                name,
                false,
                &format!("HMAC secret of issuer {}", issuer.issuer),
            );
        }
    }
    if let Some(km) = &settings.security.key_manager {
        if let Some(name) = &km.password_env {
            var(name, false, "key manager password");
        }
    }
    let inline = |section: &str, key: &str, message: &str, fix: &str| DeploymentConfigError {
        file: shown.to_string(),
        line: config::line_of(text, section, key),
        message: message.to_string(),
        fix: fix.to_string(),
    };
    if has_express {
        if !settings.admin.token.is_empty() {
            return Err(inline(
                "admin",
                "token",
                "[admin] token is a secret, and this file becomes a Kubernetes ConfigMap",
                "remove it from the file: the Deployment sets MGW_ADMIN_TOKEN from the Secret's key mgw-admin-token",
            ));
        }
        var("MGW_ADMIN_TOKEN", true, "admin API token");
    }
    if !settings.store.redis.is_empty() {
        if mgw_runtime::config::redact_url(&settings.store.redis) != settings.store.redis {
            return Err(inline(
                "store",
                "redis",
                "[store] redis holds a password, and this file becomes a Kubernetes ConfigMap",
                "write the URL without the password here (e.g. \"redis://redis:6379\") and put the whole URL in the Secret's key mgw-store-redis: the Deployment sets MGW_STORE_REDIS from it",
            ));
        }
        var(
            "MGW_STORE_REDIS",
            true,
            "Redis URL with its password (optional: else the file's)",
        );
        if !settings.store.redis_password_env.is_empty() {
            var(
                &settings.store.redis_password_env,
                false,
                "Redis password ([store] redis_password_env)",
            );
        }
    }
    // `${VAR}` in the Redis settings: substituted at start-up, so from the Secret too.
    for text in [
        &settings.store.redis,
        &settings.store.redis_namespace,
        &settings.rate_limit.redis,
    ] {
        for (name, defaulted) in mgw_runtime::env_template::variables_with_defaults(text) {
            var(name, defaulted, &format!("${{{name}}} of a Redis setting"));
        }
    }
    if mgw_runtime::config::redact_url(&settings.rate_limit.redis) != settings.rate_limit.redis {
        return Err(inline(
            "rate_limit",
            "redis",
            "[rate_limit] redis holds a password, and this file becomes a Kubernetes ConfigMap",
            "leave [rate_limit] redis empty: the counters then share [store] redis, whose URL the Deployment takes from the Secret",
        ));
    }
    Ok((files, env))
}

/// The environment variables the model's Express Gateway settings refer to (`${NAME}` in
/// listeners, service endpoint URLs, TLS files, host patterns, the storage plugin's keys, policy
/// settings such as a jwt secret): the gateway substitutes them at start-up, so the Deployment
/// takes each from the Secret, optional when every reference has a default. The toolkit has
/// refused `${NAME}` everywhere else, so every reference found here is a setting's.
pub fn model_variables(model: &GatewayModel) -> Vec<SecretEnv> {
    fn walk(value: &serde_json::Value, found: &mut Vec<(String, bool)>) {
        match value {
            serde_json::Value::String(text) => {
                // `${NAME:-default}`: the gateway starts without the variable.
                for (name, defaulted) in mgw_runtime::env_template::variables_with_defaults(text) {
                    found.push((name.to_string(), defaulted));
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, found)),
            serde_json::Value::Object(map) => map.values().for_each(|v| walk(v, found)),
            _ => {}
        }
    }
    let mut found = Vec::new();
    for part in [
        serde_json::to_value(&model.express),
        serde_json::to_value(&model.pipelines),
    ] {
        walk(&part.unwrap_or_default(), &mut found);
    }
    let mut out: Vec<SecretEnv> = Vec::new();
    for (name, defaulted) in found {
        match out.iter_mut().find(|e| e.name == name) {
            // Required as soon as one reference has no default.
            Some(existing) => existing.optional &= defaulted,
            None => out.push(SecretEnv {
                key: secret_key(&name),
                what: format!("${{{name}}} of the Express Gateway configuration"),
                optional: defaulted,
                name,
            }),
        }
    }
    out
}

/// Whether a file looks like a private key (never copied into an image, whatever names it).
fn looks_secret(path: &Path) -> bool {
    use std::io::Read;
    let mut head = Vec::new();
    let read = std::fs::File::open(path).and_then(|f| f.take(64 * 1024).read_to_end(&mut head));
    read.is_ok() && String::from_utf8_lossy(&head).contains("PRIVATE KEY")
}

/// The files of `conf/` that go into the image (relative paths), without
/// `deployment-config.toml`, the secret files and anything that looks like a private key;
/// the skipped private-key look-alikes come second.
fn conf_files(
    conf: &Path,
    secrets: &[SecretFile],
) -> Result<(Vec<PathBuf>, Vec<PathBuf>), DeployError> {
    let mut out = Vec::new();
    let mut skipped = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(dir) = stack.pop() {
        let full = conf.join(&dir);
        let entries = std::fs::read_dir(&full).map_err(|source| DeployError::Io {
            what: "reading",
            path: full.clone(),
            source,
        })?;
        let mut names: Vec<_> = entries.filter_map(Result::ok).collect();
        names.sort_by_key(|e| e.file_name());
        for entry in names {
            let relative = dir.join(entry.file_name());
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                stack.push(relative);
            } else if kind.is_file() {
                if relative == Path::new("deployment-config.toml")
                    || secrets.iter().any(|s| s.path == relative)
                {
                    continue;
                }
                if looks_secret(&entry.path()) {
                    skipped.push(relative);
                    continue;
                }
                out.push(relative);
            }
        }
    }
    out.sort();
    Ok((out, skipped))
}

/// What [`generate`] wrote and has to say.
#[derive(Debug, Default)]
pub struct Report {
    /// Folders written.
    pub written: Vec<PathBuf>,
    /// Warnings (ignored WSO2 keys, skipped files).
    pub warnings: Vec<String>,
    /// How to use them: `docker build`, `kubectl create secret`, `kubectl apply`.
    pub next: Vec<String>,
}

/// Writes the artefacts the options and `conf/deployment-config.toml` ask for (nothing when
/// neither does). Run after the binary is in place.
pub fn generate(
    project: &Project,
    model: &GatewayModel,
    options: &DeployOptions,
) -> Result<Report, DeployError> {
    let path = project.deployment_config();
    let shown = project.display(&path);
    let (mut deployment, warnings) = match std::fs::read_to_string(&path) {
        Ok(text) => config::parse(&text, &shown)?,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            (DeploymentConfig::default(), Vec::new())
        }
        Err(source) => {
            return Err(DeployError::Io {
                what: "reading",
                path,
                source,
            })
        }
    };
    let docker = options.docker
        || options.image.is_some()
        || options.base_image.is_some()
        || deployment.docker.docker_config.enable;
    let kubernetes = options.kubernetes || deployment.kubernetes.kubernetes_deployment.enable;
    let mut report = Report {
        warnings: warnings
            .into_iter()
            .map(|w| format!("{shown}: {w}"))
            .collect(),
        ..Report::default()
    };
    if !docker && !kubernetes {
        return Ok(report);
    }
    if let Some(image) = &options.image {
        let (name, tag) = match image.rsplit_once(':') {
            Some((name, tag)) if !tag.contains('/') => (name, tag),
            _ => (image.as_str(), ""),
        };
        deployment.docker.docker_config.name = name.to_string();
        deployment.docker.docker_config.tag = tag.to_string();
    }
    if let Some(base) = &options.base_image {
        deployment.docker.docker_config.base_image = base.clone();
    }
    if options.image.is_some() || options.base_image.is_some() {
        // The command line's values get the file's checks (as `--docker-image` has no line).
        config::check_options(&deployment, "--docker-image/--docker-base-image")?;
    }
    let settings_path = project.config_file();
    let settings_shown = project.display(&settings_path);
    let settings_text =
        std::fs::read_to_string(&settings_path).map_err(|source| DeployError::Io {
            what: "reading",
            path: settings_path.clone(),
            source,
        })?;
    let settings = mgw_runtime::config::parse(&settings_text, &settings_path, &[], &[])
        .map_err(|e| DeployError::Settings(e.to_string()))?;
    let (secret_files, mut secret_env) = secrets(
        &settings,
        &settings_text,
        &settings_shown,
        !model.express.is_empty(),
    )?;
    for variable in model_variables(model) {
        if !secret_env.iter().any(|e| e.name == variable.name) {
            secret_env.push(variable);
        }
    }
    // A literal value in the deployment configuration's `env` wins (one entry per name).
    let literal = &deployment.kubernetes.kubernetes_deployment.env;
    secret_env.retain(|e| !literal.contains_key(&e.name));
    let inputs = Inputs {
        project: project.name.clone(),
        model,
        settings,
        settings_text,
        deployment,
        secret_files,
        secret_env,
    };
    if docker {
        let dir = project.target_dir().join("docker");
        let (files, skipped) = conf_files(&project.conf_dir(), &inputs.secret_files)?;
        for file in skipped {
            report.warnings.push(format!(
                "{} looks like a private key: not copied into the image (mount it, or name it in conf/micro-gw.toml)",
                project.display(&project.conf_dir().join(file))
            ));
        }
        docker::write(
            &dir,
            &project.binary(),
            &project.conf_dir(),
            &files,
            &inputs,
        )?;
        report.next.push(format!(
            "docker build -t {} {}",
            image_reference(&inputs),
            dir.display()
        ));
        if inputs.deployment.docker.docker_config.conf == config::ConfMode::Mount
            || !inputs.secret_files.is_empty()
        {
            report.next.push(docker::run_hint(
                &inputs,
                &std::path::absolute(project.conf_dir()).unwrap_or(project.conf_dir()),
            ));
        }
        report.written.push(dir);
    }
    if kubernetes {
        let dir = project.target_dir().join("kubernetes");
        let notes = kubernetes::write(&dir, &inputs)?;
        report.warnings.extend(notes);
        if let Some(command) = kubernetes::secret_command(&inputs, &project.conf_dir()) {
            report.next.push(command);
        }
        report
            .next
            .push(format!("kubectl apply -f {}", dir.display()));
        report.written.push(dir);
    }
    Ok(report)
}

/// Replaces `dir` with exactly `files` (relative path, content), so no stale file survives.
/// Every file is world-readable (0644): `COPY` keeps the mode, and the image runs the gateway
/// as a non-root user who must read its `conf/` (none of these files is a secret).
fn replace_dir(dir: &Path, files: &[(PathBuf, Vec<u8>)]) -> Result<(), DeployError> {
    let io = |what, path: &Path| {
        let path = path.to_path_buf();
        move |source| DeployError::Io { what, path, source }
    };
    match std::fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(io("removing", dir)(err)),
    }
    for (relative, content) in files {
        let path = dir.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io("creating", parent))?;
        }
        crate::fsutil::write_atomic(&path, content, Some(0o644)).map_err(io("writing", &path))?;
    }
    Ok(())
}
