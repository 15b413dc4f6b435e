//! `target/kubernetes/`: one YAML file per object — Deployment, Service, ConfigMap (the
//! project's `conf/micro-gw.toml`), optional HorizontalPodAutoscaler. The Secret is referred to,
//! never written.
//!
//! The Deployment follows Kubernetes' termination sequence: the readiness probe reads
//! `/health`, which answers 503 from the moment the gateway gets SIGTERM; the gateway goes on
//! serving for `drainDelaySeconds` (`MGW_LISTENER_DRAIN_DELAY_SECONDS`), then closes its
//! listeners and lets requests in flight finish within `listener.shutdown_timeout_seconds`;
//! `terminationGracePeriodSeconds` covers both plus a margin, so the kubelet never kills a
//! draining gateway. (The kubelet stops acting on liveness failures once a pod is terminating,
//! so the liveness probe can read the same route.)

use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use super::{
    data_dir, image_home, image_reference, replace_dir, uses_file_store, DeployError, Inputs,
};

/// Seconds added to drain delay + shutdown timeout for `terminationGracePeriodSeconds`.
pub const GRACE_MARGIN_SECONDS: u64 = 5;

/// One container port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerPort {
    /// Port name (at most 15 characters): `http`, `https`, `eg-http`, `eg-https`, ...
    pub name: String,
    /// The port.
    pub port: u16,
    /// HTTPS.
    pub tls: bool,
}

/// A port as written in an Express Gateway configuration: a number, or `${VAR:-default}`.
fn express_port(written: &str) -> Option<u16> {
    written.trim().parse().ok().or_else(|| {
        let (_, default) = written.split_once(":-")?;
        default.trim_end_matches('}').trim().parse().ok()
    })
}

/// The listeners' ports.
pub fn container_ports(inputs: &Inputs<'_>) -> Vec<ContainerPort> {
    let mut out = Vec::new();
    let listener = &inputs.settings.listener;
    let model = inputs.model;
    if !model.apis.is_empty() || model.express.is_empty() {
        if listener.http_enabled {
            out.push(ContainerPort {
                name: "http".into(),
                port: listener.http_port,
                tls: false,
            });
        }
        if listener.https_enabled {
            out.push(ContainerPort {
                name: "https".into(),
                port: listener.https_port,
                tls: true,
            });
        }
    }
    let overrides = &inputs.settings.express_gateway;
    for (index, express) in model.express.iter().enumerate() {
        let suffix = if index == 0 {
            String::new()
        } else {
            format!("-{index}")
        };
        let http = overrides
            .http_port
            .or_else(|| express.http.as_ref().and_then(|l| express_port(&l.port)));
        let https = overrides.https_port.or_else(|| {
            express
                .https
                .as_ref()
                .and_then(|l| express_port(&l.listen.port))
        });
        for (port, tls, name) in [(http, false, "eg-http"), (https, true, "eg-https")] {
            if let Some(port) = port.filter(|p| *p != 0) {
                if !out.iter().any(|p| p.port == port) {
                    out.push(ContainerPort {
                        name: format!("{name}{suffix}"),
                        port,
                        tls,
                    });
                }
            }
        }
    }
    out
}

/// The metrics listener's port when Prometheus can scrape it in a pod: `[metrics]` enabled on a
/// non-loopback address with a fixed port. Loopback (the default) is unreachable from outside
/// the pod, so it gets a note saying to set `host = "0.0.0.0"` instead of a port.
pub fn metrics_port(inputs: &Inputs<'_>, notes: &mut Vec<String>) -> Option<u16> {
    let metrics = &inputs.settings.metrics;
    if !metrics.enabled {
        return None;
    }
    let loopback = metrics
        .host
        .parse::<std::net::IpAddr>()
        .map_or(metrics.host == "localhost", |ip| ip.is_loopback());
    if loopback {
        notes.push(format!(
            "the metrics listener binds {} (loopback), which Prometheus cannot reach in a pod: set [metrics] host = \"0.0.0.0\" in conf/micro-gw.toml to get a `metrics` container port and prometheus.io/scrape annotations (docs/operations.md)",
            metrics.host
        ));
        return None;
    }
    (metrics.port != 0).then_some(metrics.port)
}

/// The object names.
pub struct Names {
    /// Deployment (and the `app.kubernetes.io/name` label).
    pub deployment: String,
    /// Service.
    pub service: String,
    /// ConfigMap.
    pub config_map: String,
    /// Secret referred to.
    pub secret: String,
    /// HorizontalPodAutoscaler.
    pub hpa: String,
}

/// The names, from the file or the project's name.
pub fn names(inputs: &Inputs<'_>) -> Names {
    let k8s = &inputs.deployment.kubernetes;
    let deployment = if k8s.kubernetes_deployment.name.is_empty() {
        dns_name(&inputs.project)
    } else {
        k8s.kubernetes_deployment.name.clone()
    };
    let or = |name: &str, default: String| {
        if name.is_empty() {
            default
        } else {
            name.to_string()
        }
    };
    Names {
        service: or(&k8s.kubernetes_service.name, deployment.clone()),
        config_map: or(
            &k8s.kubernetes_config_map.name,
            format!("{deployment}-conf"),
        ),
        secret: or(&k8s.kubernetes_secret.name, format!("{deployment}-secrets")),
        hpa: or(&k8s.kubernetes_hpa.name, deployment.clone()),
        deployment,
    }
}

/// A project name as a DNS-1123 label.
fn dns_name(project: &str) -> String {
    let mut name: String = project
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    name.truncate(63 - "-secrets".len());
    let name = name.trim_matches('-').to_string();
    if name.is_empty() {
        "gateway".into()
    } else {
        name
    }
}

fn metadata(
    inputs: &Inputs<'_>,
    name: &str,
    extra: &std::collections::BTreeMap<String, String>,
) -> Value {
    let mut labels = labels(inputs);
    for (key, value) in extra {
        labels.insert(key.clone(), json!(value));
    }
    let mut meta = Map::new();
    meta.insert("name".into(), json!(name));
    let namespace = &inputs.deployment.kubernetes.kubernetes_deployment.namespace;
    if !namespace.is_empty() {
        meta.insert("namespace".into(), json!(namespace));
    }
    meta.insert("labels".into(), Value::Object(labels));
    Value::Object(meta)
}

fn selector(inputs: &Inputs<'_>) -> Map<String, Value> {
    let mut map = Map::new();
    map.insert(
        "app.kubernetes.io/name".into(),
        json!(names(inputs).deployment),
    );
    map
}

fn labels(inputs: &Inputs<'_>) -> Map<String, Value> {
    let mut map = selector(inputs);
    map.insert("app.kubernetes.io/managed-by".into(), json!("micro-gw"));
    for (key, value) in &inputs.deployment.kubernetes.kubernetes_deployment.labels {
        map.insert(key.clone(), json!(value));
    }
    map
}

/// `terminationGracePeriodSeconds`: drain delay + shutdown timeout + margin.
pub fn grace_period(inputs: &Inputs<'_>) -> u64 {
    u64::from(
        inputs
            .deployment
            .kubernetes
            .kubernetes_deployment
            .drain_delay_seconds,
    ) + inputs.settings.listener.shutdown_timeout_seconds
        + GRACE_MARGIN_SECONDS
}

/// The probe's action: `/health` on the WSO2 listener (plain HTTP first), else Kargo's
/// healthcheck route on the Express Gateway listener, else a TCP check (with a note).
fn probe_action(inputs: &Inputs<'_>, port: Option<u16>, notes: &mut Vec<String>) -> Value {
    let ports = container_ports(inputs);
    let pick = |name: &str| ports.iter().find(|p| p.name == name);
    let port_ref = |found: &ContainerPort| match port {
        Some(port) => json!(port),
        None => json!(found.name),
    };
    let scheme = |p: &ContainerPort| if p.tls { "HTTPS" } else { "HTTP" };
    if let Some(p) = pick("http").or_else(|| pick("https")) {
        return json!({"httpGet": {"path": mgw_runtime::policies::health::PATH, "port": port_ref(p), "scheme": scheme(p)}});
    }
    let health = inputs
        .model
        .express
        .iter()
        .find_map(|e| e.healthcheck.clone());
    if let (Some(path), Some(p)) = (health, ports.first()) {
        return json!({"httpGet": {"path": path, "port": port_ref(p), "scheme": scheme(p)}});
    }
    if let Some(p) = ports.first() {
        let note = "the project serves no /health route (only Express Gateway listeners, no Kargo healthcheck plugin): the probes check the TCP port, so readiness does not turn off before the listeners close";
        if !notes.iter().any(|n| n == note) {
            notes.push(note.to_string());
        }
        return json!({"tcpSocket": {"port": port_ref(p)}});
    }
    json!({"tcpSocket": {"port": port.unwrap_or(9090)}})
}

fn probe(
    inputs: &Inputs<'_>,
    section: &super::config::ProbeSection,
    notes: &mut Vec<String>,
) -> Option<Value> {
    if !section.enable {
        return None;
    }
    let mut probe = probe_action(inputs, section.port, notes);
    if let Value::Object(map) = &mut probe {
        map.insert(
            "initialDelaySeconds".into(),
            json!(section.initial_delay_seconds),
        );
        map.insert("periodSeconds".into(), json!(section.period_seconds));
        map.insert("failureThreshold".into(), json!(section.failure_threshold));
        map.insert("timeoutSeconds".into(), json!(1));
    }
    Some(probe)
}

fn quantities(q: &super::config::Quantities) -> Map<String, Value> {
    let mut map = Map::new();
    if !q.cpu.is_empty() {
        map.insert("cpu".into(), json!(q.cpu));
    }
    if !q.memory.is_empty() {
        map.insert("memory".into(), json!(q.memory));
    }
    map
}

/// The Deployment; notes for the build's output.
pub fn deployment(inputs: &Inputs<'_>, notes: &mut Vec<String>) -> Value {
    let section = &inputs.deployment.kubernetes.kubernetes_deployment;
    let names = names(inputs);
    let home = image_home(&inputs.project);
    let mut env = vec![json!({
        "name": "MGW_LISTENER_DRAIN_DELAY_SECONDS",
        "value": section.drain_delay_seconds.to_string(),
    })];
    for (name, value) in &section.env {
        if name != "MGW_LISTENER_DRAIN_DELAY_SECONDS" {
            env.push(json!({"name": name, "value": value}));
        }
    }
    for secret in &inputs.secret_env {
        env.push(json!({
            "name": secret.name,
            "valueFrom": {"secretKeyRef": {"name": names.secret, "key": secret.key, "optional": secret.optional}},
        }));
    }
    let mut mounts = vec![json!({
        "name": "conf",
        "mountPath": format!("{home}/conf/micro-gw.toml"),
        "subPath": "micro-gw.toml",
        "readOnly": true,
    })];
    for secret in &inputs.secret_files {
        let inside = if secret.path.is_absolute() {
            secret.path.clone()
        } else {
            Path::new(&home).join("conf").join(&secret.path)
        };
        mounts.push(json!({
            "name": "secrets",
            "mountPath": inside.to_string_lossy(),
            "subPath": secret.key,
            "readOnly": true,
        }));
    }
    let mut volumes = vec![json!({"name": "conf", "configMap": {"name": names.config_map}})];
    if !inputs.secret_files.is_empty() {
        volumes.push(json!({"name": "secrets", "secret": {"secretName": names.secret}}));
    }
    if let Some(data) = data_dir(inputs) {
        mounts.push(json!({"name": "data", "mountPath": data}));
        volumes.push(json!({"name": "data", "emptyDir": {}}));
    }
    if uses_file_store(inputs) {
        let replicas = if inputs.deployment.kubernetes.kubernetes_hpa.enable {
            inputs.deployment.kubernetes.kubernetes_hpa.max_replicas
        } else {
            section.replicas
        };
        if replicas > 1 {
            notes.push(format!("consumers are kept in each pod's own file (emptyDir), so {replicas} replicas do not share them: set [store] redis in conf/micro-gw.toml (docs/replicas.md)"));
        } else {
            notes.push("consumers are kept in the pod's emptyDir and lost when it is replaced: set [store] redis in conf/micro-gw.toml to keep them (docs/replicas.md)".to_string());
        }
    }
    let mut ports: Vec<Value> = container_ports(inputs)
        .iter()
        .map(|p| json!({"name": p.name, "containerPort": p.port, "protocol": "TCP"}))
        .collect();
    // The metrics port is the pod's (for Prometheus' pod discovery), not the Service's.
    let metrics = metrics_port(inputs, notes);
    if let Some(port) = metrics {
        ports.push(json!({"name": "metrics", "containerPort": port, "protocol": "TCP"}));
    }
    let mut resources = Map::new();
    let requests = quantities(&section.resources.requests);
    if !requests.is_empty() {
        resources.insert("requests".into(), Value::Object(requests));
    }
    let limits = quantities(&section.resources.limits);
    if !limits.is_empty() {
        resources.insert("limits".into(), Value::Object(limits));
    }
    let mut container = Map::new();
    container.insert("name".into(), json!("gateway"));
    container.insert("image".into(), json!(image_reference(inputs)));
    container.insert("imagePullPolicy".into(), json!(section.image_pull_policy));
    container.insert("ports".into(), json!(ports));
    container.insert("env".into(), json!(env));
    container.insert("resources".into(), Value::Object(resources));
    if let Some(p) = probe(inputs, &section.readiness_probe, notes) {
        container.insert("readinessProbe".into(), p);
    }
    if let Some(p) = probe(inputs, &section.liveness_probe, notes) {
        container.insert("livenessProbe".into(), p);
    }
    container.insert(
        "securityContext".into(),
        json!({
            "allowPrivilegeEscalation": false,
            "readOnlyRootFilesystem": true,
            "capabilities": {"drop": ["ALL"]},
        }),
    );
    container.insert("volumeMounts".into(), json!(mounts));
    let mut pod = Map::new();
    pod.insert(
        "terminationGracePeriodSeconds".into(),
        json!(grace_period(inputs)),
    );
    pod.insert(
        "securityContext".into(),
        json!({
            "runAsNonRoot": true,
            "runAsUser": super::docker::USER,
            "runAsGroup": super::docker::USER,
            "fsGroup": super::docker::USER,
            "seccompProfile": {"type": "RuntimeDefault"},
        }),
    );
    if !section.image_pull_secrets.is_empty() {
        let secrets: Vec<Value> = section
            .image_pull_secrets
            .iter()
            .map(|name| json!({"name": name}))
            .collect();
        pod.insert("imagePullSecrets".into(), json!(secrets));
    }
    pod.insert("containers".into(), json!([Value::Object(container)]));
    pod.insert("volumes".into(), json!(volumes));
    let mut spec = Map::new();
    // With an autoscaler the HPA owns the replica count (an `apply` must not reset it).
    if !inputs.deployment.kubernetes.kubernetes_hpa.enable {
        spec.insert("replicas".into(), json!(section.replicas));
    }
    spec.insert("selector".into(), json!({"matchLabels": selector(inputs)}));
    spec.insert(
        "strategy".into(),
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}),
    );
    let mut template_metadata = Map::new();
    template_metadata.insert("labels".into(), Value::Object(labels(inputs)));
    if let Some(port) = metrics {
        template_metadata.insert(
            "annotations".into(),
            json!({
                "prometheus.io/scrape": "true",
                "prometheus.io/port": port.to_string(),
                "prometheus.io/path": "/metrics",
            }),
        );
    }
    spec.insert(
        "template".into(),
        json!({
            "metadata": Value::Object(template_metadata),
            "spec": Value::Object(pod),
        }),
    );
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(inputs, &names.deployment, &Default::default()),
        "spec": Value::Object(spec),
    })
}

/// The Service.
pub fn service(inputs: &Inputs<'_>) -> Value {
    let section = &inputs.deployment.kubernetes.kubernetes_service;
    let names = names(inputs);
    let ports: Vec<Value> = container_ports(inputs)
        .iter()
        .map(|p| {
            let port = match section.port {
                Some(port) if p.name == "http" => port,
                _ => p.port,
            };
            json!({"name": p.name, "port": port, "targetPort": p.name, "protocol": "TCP"})
        })
        .collect();
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(inputs, &names.service, &section.labels),
        "spec": {
            "type": section.service_type,
            "selector": selector(inputs),
            "ports": ports,
        },
    })
}

/// The ConfigMap holding `micro-gw.toml` as written.
pub fn config_map(inputs: &Inputs<'_>) -> Value {
    let names = names(inputs);
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(inputs, &names.config_map, &Default::default()),
        "data": {"micro-gw.toml": inputs.settings_text},
    })
}

/// The HorizontalPodAutoscaler (autoscaling/v2, on CPU).
pub fn hpa(inputs: &Inputs<'_>) -> Value {
    let section = &inputs.deployment.kubernetes.kubernetes_hpa;
    let deployment = &inputs.deployment.kubernetes.kubernetes_deployment;
    let names = names(inputs);
    json!({
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata(inputs, &names.hpa, &Default::default()),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": names.deployment},
            "minReplicas": section.min_replicas.unwrap_or(deployment.replicas),
            "maxReplicas": section.max_replicas,
            "metrics": [{
                "type": "Resource",
                "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": section.cpu_percentage}},
            }],
        },
    })
}

/// Every object, with its file name.
pub fn manifests(inputs: &Inputs<'_>, notes: &mut Vec<String>) -> Vec<(PathBuf, Value)> {
    let names = names(inputs);
    let mut out = vec![
        (
            PathBuf::from(format!("{}-configmap.yaml", names.config_map)),
            config_map(inputs),
        ),
        (
            PathBuf::from(format!("{}-deployment.yaml", names.deployment)),
            deployment(inputs, notes),
        ),
    ];
    if inputs.deployment.kubernetes.kubernetes_service.enable {
        out.push((
            PathBuf::from(format!("{}-service.yaml", names.service)),
            service(inputs),
        ));
    }
    if inputs.deployment.kubernetes.kubernetes_hpa.enable {
        out.push((
            PathBuf::from(format!("{}-hpa.yaml", names.hpa)),
            hpa(inputs),
        ));
    }
    out
}

/// Writes the folder; returns notes for the build's output.
pub fn write(dir: &Path, inputs: &Inputs<'_>) -> Result<Vec<String>, DeployError> {
    let mut notes = Vec::new();
    let mut files = Vec::new();
    for (name, value) in manifests(inputs, &mut notes) {
        let mut text = String::from(
            "# Written by `micro-gw build` from conf/deployment-config.toml and conf/micro-gw.toml.\n",
        );
        text.push_str(&serde_yaml::to_string(&value).unwrap_or_default());
        files.push((name, text.into_bytes()));
    }
    replace_dir(dir, &files)?;
    Ok(notes)
}

/// The `kubectl create secret generic` command that creates the Secret the Deployment refers
/// to, from the project's files (paths only, never values); `None` when nothing is secret.
pub fn secret_command(inputs: &Inputs<'_>, conf: &Path) -> Option<String> {
    if inputs.secret_files.is_empty() && inputs.secret_env.is_empty() {
        return None;
    }
    let names = names(inputs);
    let mut parts = vec![format!("kubectl create secret generic {}", names.secret)];
    let namespace = &inputs.deployment.kubernetes.kubernetes_deployment.namespace;
    if !namespace.is_empty() {
        parts.push(format!("-n {namespace}"));
    }
    for file in &inputs.secret_files {
        let path = if file.path.is_absolute() {
            file.path.clone()
        } else {
            conf.join(&file.path)
        };
        parts.push(format!("--from-file={}={}", file.key, path.display()));
    }
    for env in &inputs.secret_env {
        let optional = if env.optional { ", optional" } else { "" };
        parts.push(format!(
            "--from-literal={}=<{}{optional}>",
            env.key, env.what
        ));
    }
    Some(parts.join(" "))
}
