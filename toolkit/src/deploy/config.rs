//! `conf/deployment-config.toml`: WSO2 API Microgateway 3.x's file of Docker and Kubernetes
//! settings, with its section and key names where they exist (`[docker.dockerConfig]`,
//! `[kubernetes.kubernetesDeployment]`, `kubernetesService`, `kubernetesHpa`, ...) and a few
//! keys of our own (`conf`, `drainDelaySeconds`, `resources`, probes' `failureThreshold`).
//!
//! WSO2 keys that make no sense for a gateway built here (pushing images, a Docker host, a
//! debug port, Ingress, jobs, secrets embedded in the file) are accepted and ignored with a
//! warning, so an existing file keeps working; any other key is an error naming the file, the
//! line and the keys that exist.

use serde::Deserialize;
use std::collections::BTreeMap;

/// A deployment configuration that cannot be used: the file, the line when known, what is
/// wrong and how to fix it.
#[derive(Debug, thiserror::Error)]
#[error("{file}{}: {message} ({fix})", line.map(|l| format!(":{l}")).unwrap_or_default())]
pub struct DeploymentConfigError {
    /// The file as shown to the user.
    pub file: String,
    /// 1-based line of the problem, when known.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
    /// What to do.
    pub fix: String,
}

/// A WSO2 key or section accepted but not used (see the module's documentation).
type Ignored = Option<toml::Value>;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeploymentConfig {
    /// `[docker]`
    pub docker: DockerSection,
    /// `[kubernetes]`
    pub kubernetes: KubernetesSection,
}

/// `[docker]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DockerSection {
    /// `[docker.dockerConfig]`
    #[serde(rename = "dockerConfig")]
    pub docker_config: DockerConfig,
    /// WSO2's `[docker.dockerCopyFiles]`: ignored (`conf` chooses what the image holds).
    #[serde(rename = "dockerCopyFiles")]
    pub docker_copy_files: Ignored,
}

/// How the image gets `conf/`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConfMode {
    /// `conf/` (without secret files and without `deployment-config.toml`) is copied into the
    /// image; Kubernetes replaces `micro-gw.toml` with its ConfigMap and mounts the secrets.
    #[default]
    Copy,
    /// The image holds no `conf/`: `docker run -v <project>/conf:/mgw/<project>/conf:ro`.
    Mount,
}

/// `[docker.dockerConfig]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default, rename_all = "camelCase")]
pub struct DockerConfig {
    /// Write `target/docker/` on every build (`micro-gw build --docker` does it once).
    pub enable: bool,
    /// Image name (default: the project's name).
    pub name: String,
    /// Registry (and path) the image name is prefixed with, e.g. `registry.example.com/team`.
    pub registry: String,
    /// Image tag (default `v1`, as WSO2's prompt).
    pub tag: String,
    /// Base image (default [`super::docker::DEFAULT_BASE_IMAGE`]).
    pub base_image: String,
    /// `copy` (default) or `mount`.
    pub conf: ConfMode,
    /// WSO2: build the image. Ignored: micro-gw writes the Dockerfile, `docker build` builds.
    pub build_image: Ignored,
    /// WSO2: Docker daemon. Ignored.
    pub docker_host: Ignored,
    /// WSO2: Docker daemon certificates. Ignored.
    pub docker_cert_path: Ignored,
    /// WSO2: Ballerina debugger. Ignored.
    pub enable_debug: Ignored,
    /// WSO2: Ballerina debugger port. Ignored.
    pub debug_port: Ignored,
    /// WSO2: push the image. Ignored.
    pub push: Ignored,
    /// WSO2: registry user. Ignored.
    pub username: Ignored,
    /// WSO2: registry password. Ignored (and never written anywhere).
    pub password: Ignored,
    /// WSO2: the image's command. Ignored: the image runs the gateway binary.
    pub cmd: Ignored,
}

/// `[kubernetes]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default, rename_all = "camelCase")]
pub struct KubernetesSection {
    /// `[kubernetes.kubernetesDeployment]`: writes `target/kubernetes/` when enabled.
    pub kubernetes_deployment: DeploymentSection,
    /// `[kubernetes.kubernetesService]`
    pub kubernetes_service: ServiceSection,
    /// `[kubernetes.kubernetesHpa]`
    pub kubernetes_hpa: HpaSection,
    /// `[kubernetes.kubernetesConfigMap]`
    pub kubernetes_config_map: ConfigMapSection,
    /// `[kubernetes.kubernetesSecret]`
    pub kubernetes_secret: SecretSection,
    /// WSO2: not generated.
    pub kubernetes_service_https: Ignored,
    /// WSO2: not generated.
    pub kubernetes_service_http: Ignored,
    /// WSO2: not generated.
    pub kubernetes_service_token: Ignored,
    /// WSO2: not generated.
    pub kubernetes_ingress: Ignored,
    /// WSO2: not generated.
    pub secure_kubernetes_ingress: Ignored,
    /// WSO2: not generated.
    pub kubernetes_persistent_volume_claim: Ignored,
    /// WSO2: not generated.
    pub kubernetes_job: Ignored,
}

/// A probe's settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default, rename_all = "camelCase")]
pub struct ProbeSection {
    /// Write the probe.
    pub enable: bool,
    /// Port (default: the listener serving `/health`).
    pub port: Option<u16>,
    /// Seconds before the first probe.
    pub initial_delay_seconds: u32,
    /// Seconds between probes.
    pub period_seconds: u32,
    /// Failures in a row that count.
    pub failure_threshold: u32,
}

impl ProbeSection {
    fn readiness() -> Self {
        Self {
            enable: true,
            port: None,
            initial_delay_seconds: 1,
            period_seconds: 2,
            failure_threshold: 1,
        }
    }

    fn liveness() -> Self {
        Self {
            enable: true,
            port: None,
            initial_delay_seconds: 5,
            period_seconds: 10,
            failure_threshold: 3,
        }
    }
}

impl Default for ProbeSection {
    fn default() -> Self {
        Self::liveness()
    }
}

fn default_readiness() -> ProbeSection {
    ProbeSection::readiness()
}

/// A probe table as written: the keys it leaves out take the defaults of its own probe
/// (readiness 1 / 2 / 1, liveness 5 / 10 / 3), not those of the other one.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ProbeKeys {
    enable: Option<bool>,
    port: Option<u16>,
    initial_delay_seconds: Option<u32>,
    period_seconds: Option<u32>,
    failure_threshold: Option<u32>,
}

impl ProbeKeys {
    fn over(self, base: ProbeSection) -> ProbeSection {
        ProbeSection {
            enable: self.enable.unwrap_or(base.enable),
            port: self.port.or(base.port),
            initial_delay_seconds: self
                .initial_delay_seconds
                .unwrap_or(base.initial_delay_seconds),
            period_seconds: self.period_seconds.unwrap_or(base.period_seconds),
            failure_threshold: self.failure_threshold.unwrap_or(base.failure_threshold),
        }
    }
}

fn readiness_keys<'de, D: serde::Deserializer<'de>>(d: D) -> Result<ProbeSection, D::Error> {
    Ok(ProbeKeys::deserialize(d)?.over(ProbeSection::readiness()))
}

/// CPU and memory quantities (Kubernetes notation: `250m`, `64Mi`); empty: none.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Quantities {
    /// CPU, e.g. `250m` or `1`.
    pub cpu: String,
    /// Memory, e.g. `64Mi`.
    pub memory: String,
}

/// `resources` of the container.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Resources {
    /// What the scheduler reserves (the HPA's CPU percentage is of `requests.cpu`).
    pub requests: Quantities,
    /// Hard limits.
    pub limits: Quantities,
}

impl Default for Resources {
    fn default() -> Self {
        Self {
            requests: Quantities {
                cpu: "250m".into(),
                memory: "64Mi".into(),
            },
            limits: Quantities {
                cpu: String::new(),
                memory: "256Mi".into(),
            },
        }
    }
}

/// `[kubernetes.kubernetesDeployment]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default, rename_all = "camelCase")]
pub struct DeploymentSection {
    /// Write the manifests on every build (`micro-gw build --kubernetes` does it once).
    pub enable: bool,
    /// Name of the Deployment and prefix of the other objects (default: the project's name).
    pub name: String,
    /// `metadata.namespace` of every object; empty: none (kubectl's current namespace).
    pub namespace: String,
    /// Extra labels of every object.
    pub labels: BTreeMap<String, String>,
    /// Replicas (without an HPA).
    pub replicas: u32,
    /// `Always`, `IfNotPresent` or `Never`.
    pub image_pull_policy: String,
    /// Secrets holding registry credentials.
    pub image_pull_secrets: Vec<String>,
    /// Extra environment variables (`MGW_<SECTION>_<KEY>` settings, endpoint overrides).
    pub env: BTreeMap<String, String>,
    /// Seconds the gateway keeps serving after SIGTERM with `/health` answering 503
    /// (`listener.drain_delay_seconds`, set through the environment).
    pub drain_delay_seconds: u32,
    /// Container resources.
    pub resources: Resources,
    /// Liveness probe on `/health`.
    pub liveness_probe: ProbeSection,
    /// Readiness probe on `/health`.
    #[serde(default = "default_readiness", deserialize_with = "readiness_keys")]
    pub readiness_probe: ProbeSection,
    /// WSO2's older liveness keys. Ignored: `livenessProbe`.
    pub enable_liveness: Ignored,
    /// WSO2's older liveness keys. Ignored: `livenessProbe`.
    pub initial_delay_seconds: Ignored,
    /// WSO2's older liveness keys. Ignored: `livenessProbe`.
    pub period_seconds: Ignored,
    /// WSO2's older liveness keys. Ignored: `livenessProbe`.
    pub liveness_port: Ignored,
    /// WSO2: the image. Ignored: `[docker.dockerConfig]` names it.
    pub image: Ignored,
    /// WSO2. Ignored.
    pub build_image: Ignored,
    /// WSO2. Ignored: the image runs the gateway binary.
    pub cmd: Ignored,
    /// WSO2. Ignored.
    pub copy_files: Ignored,
    /// WSO2. Ignored.
    pub docker_host: Ignored,
    /// WSO2. Ignored.
    pub docker_cert_path: Ignored,
    /// WSO2. Ignored.
    pub push: Ignored,
    /// WSO2. Ignored: `[docker.dockerConfig] registry`.
    pub registry: Ignored,
    /// WSO2. Ignored.
    pub username: Ignored,
    /// WSO2. Ignored (and never written anywhere).
    pub password: Ignored,
    /// WSO2. Ignored: `[docker.dockerConfig] baseImage`.
    pub base_image: Ignored,
    /// WSO2. Ignored: one file per object.
    #[serde(rename = "singleYAML")]
    pub single_yaml: Ignored,
}

impl Default for DeploymentSection {
    fn default() -> Self {
        Self {
            enable: false,
            name: String::new(),
            namespace: String::new(),
            labels: BTreeMap::new(),
            replicas: 1,
            image_pull_policy: "IfNotPresent".into(),
            image_pull_secrets: Vec::new(),
            env: BTreeMap::new(),
            drain_delay_seconds: 10,
            resources: Resources::default(),
            liveness_probe: ProbeSection::liveness(),
            readiness_probe: ProbeSection::readiness(),
            enable_liveness: None,
            initial_delay_seconds: None,
            period_seconds: None,
            liveness_port: None,
            image: None,
            build_image: None,
            cmd: None,
            copy_files: None,
            docker_host: None,
            docker_cert_path: None,
            push: None,
            registry: None,
            username: None,
            password: None,
            base_image: None,
            single_yaml: None,
        }
    }
}

/// `[kubernetes.kubernetesService]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default, rename_all = "camelCase")]
pub struct ServiceSection {
    /// Write the Service (on by default with the Deployment).
    pub enable: bool,
    /// Its name (default: the Deployment's).
    pub name: String,
    /// Extra labels.
    pub labels: BTreeMap<String, String>,
    /// `ClusterIP`, `NodePort` or `LoadBalancer`.
    pub service_type: String,
    /// The Service's port for the HTTP listener (default: the listener's port).
    pub port: Option<u16>,
}

impl Default for ServiceSection {
    fn default() -> Self {
        Self {
            enable: true,
            name: String::new(),
            labels: BTreeMap::new(),
            service_type: "ClusterIP".into(),
            port: None,
        }
    }
}

/// `[kubernetes.kubernetesHpa]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default, rename_all = "camelCase")]
pub struct HpaSection {
    /// Write a HorizontalPodAutoscaler (autoscaling/v2).
    pub enable: bool,
    /// Its name (default: the Deployment's).
    pub name: String,
    /// Fewest replicas (default: the Deployment's `replicas`).
    pub min_replicas: Option<u32>,
    /// Most replicas.
    pub max_replicas: u32,
    /// Target average CPU use, percent of `resources.requests.cpu` (WSO2 spells it
    /// `cpuPrecentage`; both are read).
    #[serde(alias = "cpuPrecentage")]
    pub cpu_percentage: u32,
}

impl Default for HpaSection {
    fn default() -> Self {
        Self {
            enable: false,
            name: String::new(),
            min_replicas: None,
            max_replicas: 4,
            cpu_percentage: 80,
        }
    }
}

/// `[kubernetes.kubernetesConfigMap]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default, rename_all = "camelCase")]
pub struct ConfigMapSection {
    /// The ConfigMap's name (default `<deployment>-conf`).
    pub name: String,
    /// WSO2: the `micro-gw.conf` to mount. Ignored: `conf/micro-gw.toml` is the one.
    pub ballerina_conf: Ignored,
    /// WSO2: more ConfigMaps. Ignored.
    pub config_maps: Ignored,
    /// WSO2. Ignored: the ConfigMap is always written with the Deployment.
    pub enable: Ignored,
}

/// `[kubernetes.kubernetesSecret]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default, rename_all = "camelCase")]
pub struct SecretSection {
    /// The Secret the Deployment refers to (default `<deployment>-secrets`). micro-gw never
    /// writes it: the build prints the `kubectl create secret` command.
    pub name: String,
    /// WSO2: secrets with their data in this file. Ignored: secrets never go through it.
    pub secrets: Ignored,
}

/// Reads and checks the file. Returns the configuration and one warning per WSO2 key that
/// is ignored.
pub fn parse(
    text: &str,
    shown: &str,
) -> Result<(DeploymentConfig, Vec<String>), DeploymentConfigError> {
    let config: DeploymentConfig = toml::from_str(text).map_err(|err| {
        let line = err.span().map(|span| line_at(text, span.start));
        let message = err.message().trim().to_string();
        let fix = if message.contains("unknown field") || message.contains("unknown variant") {
            "use one of the names listed; docs/deployment.md lists every key".to_string()
        } else {
            "fix the TOML there; docs/deployment.md lists every key".to_string()
        };
        DeploymentConfigError {
            file: shown.to_string(),
            line,
            message,
            fix,
        }
    })?;
    let mut warnings = Vec::new();
    ignored_keys(text, &mut warnings);
    check(&config, text, shown)?;
    Ok((config, warnings))
}

/// 1-based line of a byte offset.
fn line_at(text: &str, offset: usize) -> usize {
    text.get(..offset)
        .unwrap_or(text)
        .bytes()
        .filter(|b| *b == b'\n')
        .count()
        + 1
}

/// The line of `key` inside the table `[section]` (or `section.key` / `key` in an enclosing
/// table), for errors found after parsing.
pub fn line_of(text: &str, section: &str, key: &str) -> Option<usize> {
    let mut current = String::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if let Some(header) = line.strip_prefix('[') {
            current = header
                .trim_start_matches('[')
                .trim_end_matches(']')
                .trim()
                .to_string();
            continue;
        }
        let Some((k, _)) = line.split_once('=') else {
            continue;
        };
        let k = k.trim().trim_matches('"');
        let full = if current.is_empty() {
            k.to_string()
        } else {
            format!("{current}.{k}")
        };
        if full == format!("{section}.{key}") {
            return Some(i + 1);
        }
    }
    None
}

/// WSO2 keys accepted without effect, each named once with its line.
fn ignored_keys(text: &str, warnings: &mut Vec<String>) {
    const IGNORED: &[(&str, &str)] = &[
        ("docker.dockerConfig", "buildImage"),
        ("docker.dockerConfig", "dockerHost"),
        ("docker.dockerConfig", "dockerCertPath"),
        ("docker.dockerConfig", "enableDebug"),
        ("docker.dockerConfig", "debugPort"),
        ("docker.dockerConfig", "push"),
        ("docker.dockerConfig", "username"),
        ("docker.dockerConfig", "password"),
        ("docker.dockerConfig", "cmd"),
        ("kubernetes.kubernetesDeployment", "enableLiveness"),
        ("kubernetes.kubernetesDeployment", "initialDelaySeconds"),
        ("kubernetes.kubernetesDeployment", "periodSeconds"),
        ("kubernetes.kubernetesDeployment", "livenessPort"),
        ("kubernetes.kubernetesDeployment", "image"),
        ("kubernetes.kubernetesDeployment", "buildImage"),
        ("kubernetes.kubernetesDeployment", "cmd"),
        ("kubernetes.kubernetesDeployment", "dockerHost"),
        ("kubernetes.kubernetesDeployment", "dockerCertPath"),
        ("kubernetes.kubernetesDeployment", "push"),
        ("kubernetes.kubernetesDeployment", "registry"),
        ("kubernetes.kubernetesDeployment", "username"),
        ("kubernetes.kubernetesDeployment", "password"),
        ("kubernetes.kubernetesDeployment", "baseImage"),
        ("kubernetes.kubernetesDeployment", "singleYAML"),
        ("kubernetes.kubernetesConfigMap", "ballerinaConf"),
        ("kubernetes.kubernetesConfigMap", "enable"),
    ];
    // WSO2's shipped file (and this project's older skeleton) writes many of these switched
    // off: only a key that asks for something, or a section that is enabled, is worth a line.
    let asks = |line: usize| {
        let value = text
            .lines()
            .nth(line - 1)
            .and_then(|l| l.split_once('='))
            .map(|(_, v)| v.split('#').next().unwrap_or("").trim().to_string())
            .unwrap_or_default();
        !["false", "\"\"", "''", "0", "[]", "{}"].contains(&value.as_str())
    };
    for (section, key) in IGNORED {
        if let Some(line) = line_of(text, section, key).filter(|l| asks(*l)) {
            warnings.push(format!(
                "line {line}: [{section}] {key} is a WSO2 key micro-gw does not use; it is ignored"
            ));
        }
    }
    for (i, raw) in text.lines().enumerate() {
        let header = raw.trim().trim_start_matches('[').trim_end_matches(']');
        if raw.trim().starts_with('[')
            && [
                "docker.dockerCopyFiles",
                "kubernetes.kubernetesServiceHttps",
                "kubernetes.kubernetesServiceHttp",
                "kubernetes.kubernetesServiceToken",
                "kubernetes.kubernetesIngress",
                "kubernetes.secureKubernetesIngress",
                "kubernetes.kubernetesPersistentVolumeClaim",
                "kubernetes.kubernetesJob",
                "kubernetes.kubernetesSecret.secrets",
                "kubernetes.kubernetesConfigMap.configMaps",
            ]
            .contains(&header.trim())
            && section_asks(text, i)
        {
            warnings.push(format!(
                "line {}: [{}] is a WSO2 section micro-gw does not generate; it is ignored",
                i + 1,
                header.trim()
            ));
        }
    }
}

/// Whether the section whose header is on line index `header` asks for something: it has
/// `enable = true`, or no `enable` key at all (WSO2's `[[secrets]]`, `[[configMaps]]`).
fn section_asks(text: &str, header: usize) -> bool {
    let mut enable = None;
    for line in text.lines().skip(header + 1) {
        let line = line.trim();
        if line.starts_with('[') {
            break;
        }
        if let Some((key, value)) = line.split_once('=') {
            if key.trim() == "enable" {
                enable = Some(value.split('#').next().unwrap_or("").trim() == "true");
            }
        }
    }
    enable.unwrap_or(true)
}

/// A Kubernetes object name: DNS-1123 label (lowercase letters, digits, `-`; at most 63).
pub fn is_dns_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// A Kubernetes quantity as written here: digits (with an optional fraction) and an optional
/// suffix (`m`, `k`, `M`, `G`, `Ki`, `Mi`, `Gi`, ...).
fn is_quantity(value: &str) -> bool {
    let digits_end = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(value.len());
    let (number, suffix) = value.split_at(digits_end);
    !number.is_empty()
        && number.parse::<f64>().is_ok()
        && [
            "", "m", "k", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei",
        ]
        .contains(&suffix)
}

/// The checks of [`parse`] on values that come from the command line (`shown` names it).
pub fn check_options(config: &DeploymentConfig, shown: &str) -> Result<(), DeploymentConfigError> {
    check(config, "", shown)
}

fn check(config: &DeploymentConfig, text: &str, shown: &str) -> Result<(), DeploymentConfigError> {
    let error = |section: &str, key: &str, message: String, fix: &str| DeploymentConfigError {
        file: shown.to_string(),
        line: line_of(text, section, key),
        message,
        fix: fix.to_string(),
    };
    let docker = &config.docker.docker_config;
    const DOCKER: &str = "docker.dockerConfig";
    if !docker.name.is_empty() && !is_image_name(&docker.name) {
        return Err(error(
            DOCKER,
            "name",
            format!("[{DOCKER}] name = {:?} is not an image name", docker.name),
            "use lowercase letters, digits and . _ - / only, e.g. \"petstore\"",
        ));
    }
    if !docker.tag.is_empty() && !is_tag(&docker.tag) {
        return Err(error(
            DOCKER,
            "tag",
            format!("[{DOCKER}] tag = {:?} is not an image tag", docker.tag),
            "use letters, digits and . _ - only (at most 128), e.g. \"v1\"",
        ));
    }
    if docker.registry.contains(char::is_whitespace) || docker.registry.ends_with('/') {
        return Err(error(
            DOCKER,
            "registry",
            format!(
                "[{DOCKER}] registry = {:?} is not a registry",
                docker.registry
            ),
            "write host[:port][/path] without a trailing slash, e.g. \"registry.example.com/team\"",
        ));
    }
    if docker.base_image.contains(char::is_whitespace) {
        return Err(error(
            DOCKER,
            "baseImage",
            format!(
                "[{DOCKER}] baseImage = {:?} is not an image reference",
                docker.base_image
            ),
            "e.g. \"gcr.io/distroless/cc-debian12:nonroot\"",
        ));
    }
    let k8s = &config.kubernetes;
    let deployment = &k8s.kubernetes_deployment;
    const DEPLOYMENT: &str = "kubernetes.kubernetesDeployment";
    for (section, key, name) in [
        (DEPLOYMENT, "name", &deployment.name),
        (DEPLOYMENT, "namespace", &deployment.namespace),
        (
            "kubernetes.kubernetesService",
            "name",
            &k8s.kubernetes_service.name,
        ),
        ("kubernetes.kubernetesHpa", "name", &k8s.kubernetes_hpa.name),
        (
            "kubernetes.kubernetesConfigMap",
            "name",
            &k8s.kubernetes_config_map.name,
        ),
        (
            "kubernetes.kubernetesSecret",
            "name",
            &k8s.kubernetes_secret.name,
        ),
    ] {
        if !name.is_empty() && !is_dns_label(name) {
            return Err(error(section, key, format!("[{section}] {key} = {name:?} is not a Kubernetes name"), "use lowercase letters, digits and '-' (at most 63, starting and ending with a letter or digit)"));
        }
    }
    if deployment.replicas == 0 {
        return Err(error(
            DEPLOYMENT,
            "replicas",
            format!("[{DEPLOYMENT}] replicas = 0 runs no gateway"),
            "use 1 or more (or kubectl scale to stop it)",
        ));
    }
    if !["Always", "IfNotPresent", "Never"].contains(&deployment.image_pull_policy.as_str()) {
        return Err(error(
            DEPLOYMENT,
            "imagePullPolicy",
            format!(
                "[{DEPLOYMENT}] imagePullPolicy = {:?} is not a pull policy",
                deployment.image_pull_policy
            ),
            "use \"Always\", \"IfNotPresent\" or \"Never\"",
        ));
    }
    for (key, value) in [
        ("requests.cpu", &deployment.resources.requests.cpu),
        ("requests.memory", &deployment.resources.requests.memory),
        ("limits.cpu", &deployment.resources.limits.cpu),
        ("limits.memory", &deployment.resources.limits.memory),
    ] {
        if !value.is_empty() && !is_quantity(value) {
            let (table, field) = key.split_once('.').unwrap_or((key, key));
            let section = format!("{DEPLOYMENT}.resources.{table}");
            return Err(error(
                &section,
                field,
                format!("[{DEPLOYMENT}.resources] {key} = {value:?} is not a Kubernetes quantity"),
                "write e.g. \"250m\" or \"1\" for CPU and \"64Mi\" or \"1Gi\" for memory",
            ));
        }
    }
    for name in deployment.env.keys() {
        let valid = !name.is_empty()
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
        if !valid {
            return Err(error(
                &format!("{DEPLOYMENT}.env"),
                name,
                format!("[{DEPLOYMENT}.env] {name:?} is not an environment variable name"),
                "use letters, digits and _ (not starting with a digit)",
            ));
        }
    }
    for (key, probe) in [
        ("livenessProbe", &deployment.liveness_probe),
        ("readinessProbe", &deployment.readiness_probe),
    ] {
        if probe.period_seconds == 0 || probe.failure_threshold == 0 {
            let section = format!("{DEPLOYMENT}.{key}");
            let field = if probe.period_seconds == 0 {
                "periodSeconds"
            } else {
                "failureThreshold"
            };
            return Err(error(
                &section,
                field,
                format!("[{section}] {field} = 0"),
                "use 1 or more",
            ));
        }
    }
    let service = &k8s.kubernetes_service;
    if !["ClusterIP", "NodePort", "LoadBalancer"].contains(&service.service_type.as_str()) {
        return Err(error(
            "kubernetes.kubernetesService",
            "serviceType",
            format!(
                "[kubernetes.kubernetesService] serviceType = {:?} is not a Service type",
                service.service_type
            ),
            "use \"ClusterIP\", \"NodePort\" or \"LoadBalancer\"",
        ));
    }
    let hpa = &k8s.kubernetes_hpa;
    const HPA: &str = "kubernetes.kubernetesHpa";
    if hpa.enable {
        let min = hpa.min_replicas.unwrap_or(deployment.replicas);
        if min == 0 {
            return Err(error(
                HPA,
                "minReplicas",
                format!("[{HPA}] minReplicas = 0"),
                "use 1 or more",
            ));
        }
        if hpa.max_replicas < min {
            return Err(error(HPA, "maxReplicas", format!("[{HPA}] maxReplicas = {} is below minReplicas ({min})", hpa.max_replicas), "raise maxReplicas or lower minReplicas (which defaults to the Deployment's replicas)"));
        }
        if hpa.cpu_percentage == 0 {
            let key = if line_of(text, HPA, "cpuPrecentage").is_some() {
                "cpuPrecentage"
            } else {
                "cpuPercentage"
            };
            return Err(error(
                HPA,
                key,
                format!("[{HPA}] {key} = 0"),
                "use a target between 1 and 100 or more (percent of requests.cpu), e.g. 80",
            ));
        }
        if deployment.resources.requests.cpu.is_empty() {
            return Err(error(
                &format!("{DEPLOYMENT}.resources.requests"),
                "cpu",
                format!("[{HPA}] scales on CPU, but [{DEPLOYMENT}.resources.requests] has no cpu"),
                "set resources.requests.cpu, e.g. \"250m\"",
            ));
        }
    }
    Ok(())
}

/// An image repository path: lowercase components of `[a-z0-9._-]` separated by `/`.
fn is_image_name(name: &str) -> bool {
    name.len() <= 255
        && name.split('/').all(|part| {
            !part.is_empty()
                && part.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
                })
                && part.starts_with(|c: char| c.is_ascii_alphanumeric())
        })
}

/// An image tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
fn is_tag(tag: &str) -> bool {
    tag.len() <= 128
        && tag.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}
