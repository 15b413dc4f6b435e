//! `target/docker/`: a Dockerfile and its whole build context (`docker build <this folder>`):
//! the gateway binary, `conf/` without secrets (when `conf = "copy"`), and an empty `data/`
//! for the consumer store and the admin token of Express Gateway projects.
//!
//! The binary is linked dynamically against glibc (`libc`, `libm`, `libgcc_s`; glibc 2.36 or
//! newer when built on Debian 12, 2.34 with `MGW_PACK_RELATIVE_RELOCS=0`), so the default base
//! is distroless's `cc` image of Debian 12: glibc and libgcc, no shell, and a `nonroot` user
//! (uid 65532).

use std::path::{Path, PathBuf};

use super::config::ConfMode;
use super::{data_dir, image_home, image_reference, replace_dir, DeployError, Inputs};

/// The default base image.
pub const DEFAULT_BASE_IMAGE: &str = "gcr.io/distroless/cc-debian12:nonroot";

/// The user the gateway runs as (distroless's `nonroot`; numeric, so any base image works).
pub const USER: u32 = 65532;

/// The ports the image exposes: the listeners' (`conf/micro-gw.toml`), the Express Gateway
/// configurations' (numbers only), and the metrics listener's when it listens off loopback on
/// a fixed port (as the Kubernetes Deployment's `metrics` container port).
pub fn exposed_ports(inputs: &Inputs<'_>) -> Vec<u16> {
    let mut ports: Vec<u16> = super::kubernetes::container_ports(inputs)
        .into_iter()
        .map(|p| p.port)
        .collect();
    // The note about a loopback metrics listener is the Kubernetes writer's to give.
    ports.extend(super::kubernetes::metrics_port(inputs, &mut Vec::new()));
    ports.sort_unstable();
    ports.dedup();
    ports
}

/// The Dockerfile.
pub fn dockerfile(inputs: &Inputs<'_>) -> String {
    let docker = &inputs.deployment.docker.docker_config;
    let base = if docker.base_image.is_empty() {
        DEFAULT_BASE_IMAGE
    } else {
        &docker.base_image
    };
    let project = &inputs.project;
    let home = image_home(project);
    let mut out = String::new();
    out.push_str(&format!(
        "# Written by `micro-gw build` from conf/deployment-config.toml: build the project again to change it.\n\
         # Build from this folder:  docker build -t {image} .\n\
         # The gateway binary needs glibc 2.36+ and libgcc_s (the default base image has both;\n\
         # for a base with glibc 2.34 or 2.35, build with MGW_PACK_RELATIVE_RELOCS=0).\n\
         FROM {base}\n",
        image = image_reference(inputs),
    ));
    out.push_str(&format!("COPY {project} {home}/target/{project}\n"));
    match docker.conf {
        ConfMode::Copy => out.push_str(&format!(
            "# conf/ without deployment-config.toml and without secret files: mount those at run time.\n\
             COPY conf/ {home}/conf/\n"
        )),
        ConfMode::Mount => out.push_str(&format!(
            "# conf/ is mounted at run time: docker run -v <project>/conf:{home}/conf:ro ...\n"
        )),
    }
    if let Some(data) = data_dir(inputs) {
        out.push_str(&format!(
            "# The consumer store and the admin token ([store] path's folder) must be writable.\n\
             COPY --chown={USER}:{USER} data/ {data}/\n"
        ));
    }
    out.push_str(&format!("WORKDIR {home}\nUSER {USER}:{USER}\n"));
    let ports = exposed_ports(inputs);
    if !ports.is_empty() {
        let list: Vec<String> = ports.iter().map(u16::to_string).collect();
        out.push_str(&format!("EXPOSE {}\n", list.join(" ")));
    }
    out.push_str(&format!(
        "# SIGTERM: /health turns 503, the listeners serve listener.drain_delay_seconds more, then drain.\n\
         STOPSIGNAL SIGTERM\n\
         ENTRYPOINT [\"{home}/target/{project}\"]\n"
    ));
    out
}

/// Writes the folder: the Dockerfile, the binary (a hard link when possible), `conf/` files
/// (copy mode) and `data/` (embedded store).
pub fn write(
    dir: &Path,
    binary: &Path,
    conf: &Path,
    conf_files: &[PathBuf],
    inputs: &Inputs<'_>,
) -> Result<(), DeployError> {
    let mut files: Vec<(PathBuf, Vec<u8>)> =
        vec![(PathBuf::from("Dockerfile"), dockerfile(inputs).into_bytes())];
    if inputs.deployment.docker.docker_config.conf == ConfMode::Copy {
        for file in conf_files {
            let from = conf.join(file);
            let content = std::fs::read(&from).map_err(|source| DeployError::Io {
                what: "reading",
                path: from.clone(),
                source,
            })?;
            files.push((Path::new("conf").join(file), content));
        }
    }
    if data_dir(inputs).is_some() {
        files.push((PathBuf::from("data/.keep"), Vec::new()));
    }
    replace_dir(dir, &files)?;
    let target = dir.join(&inputs.project);
    if std::fs::hard_link(binary, &target).is_err() {
        crate::fsutil::copy_atomic(binary, &target).map_err(|source| DeployError::Io {
            what: "copying the gateway to",
            path: target.clone(),
            source,
        })?;
    }
    Ok(())
}

/// The `docker run` line: ports, and the secret files (and `conf/` in mount mode) mounted
/// read-only from the project.
pub fn run_hint(inputs: &Inputs<'_>, conf: &Path) -> String {
    let home = image_home(&inputs.project);
    let mut parts = vec!["docker run --rm".to_string()];
    for port in exposed_ports(inputs) {
        parts.push(format!("-p {port}:{port}"));
    }
    if inputs.deployment.docker.docker_config.conf == ConfMode::Mount {
        parts.push(format!("-v {}:{home}/conf:ro", conf.display()));
    } else {
        for secret in &inputs.secret_files {
            let inside = if secret.path.is_absolute() {
                secret.path.clone()
            } else {
                Path::new(&home).join("conf").join(&secret.path)
            };
            parts.push(format!(
                "-v {}:{}:ro",
                conf.join(&secret.path).display(),
                inside.display()
            ));
        }
    }
    for env in &inputs.secret_env {
        parts.push(format!("-e {}", env.name));
    }
    parts.push(image_reference(inputs));
    parts.join(" ")
}
