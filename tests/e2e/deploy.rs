//! Deployment artefacts (issue 15): `micro-gw build --docker --kubernetes` on a real project,
//! the image's layout starting the real binary, and a wrong deployment configuration stopping
//! the build with its file and line.

use std::path::Path;

use http::StatusCode;
use mgw_e2e::client;
use mgw_e2e::harness::{self, GatewayProcess};

const DEFINITION: &str = "openapi: 3.0.0\ninfo: {title: Shop, version: '1'}\nx-wso2-basePath: /shop\nx-wso2-production-endpoints: {urls: ['http://127.0.0.1:1']}\nx-wso2-disable-security: true\npaths:\n  /items: {get: {}}\n";

/// Copies `from` into `to` recursively (the image's files, as `COPY` lays them out).
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn build_writes_an_image_context_that_runs_and_manifests() {
    let dir = tempfile::tempdir().unwrap();
    harness::build_project(dir.path(), "shop", &[("shop.yaml", DEFINITION)]);
    // WSO2's `build -d <file>` replaces conf/deployment-config.toml first.
    let given = harness::write_file(
        dir.path(),
        "k8s.toml",
        "[kubernetes.kubernetesDeployment]\nreplicas = 2\ndrainDelaySeconds = 5\n",
    );
    let build = harness::micro_gw(
        dir.path(),
        &[
            "build",
            "shop",
            "-d",
            given.to_str().unwrap(),
            "--docker",
            "--kubernetes",
        ],
    );
    let output = harness::text(&build);
    assert!(build.status.success(), "{output}");
    for needle in [
        "Deployment artefacts: ",
        "shop/target/docker",
        "shop/target/kubernetes",
        "docker build -t shop:v1 ",
        "kubectl create secret generic shop-secrets --from-file=tls-key.pem=",
        "kubectl apply -f ",
    ] {
        assert!(output.contains(needle), "{needle}: {output}");
    }
    // Artefacts of a gateway built without --lto point at the build for production.
    let lto = harness::with_build_variant(&["build"])
        .iter()
        .any(|a| a == "--lto");
    assert_eq!(
        output.contains(micro_gw::commands::build::LTO_DEPLOY_TIP),
        !lto,
        "{output}"
    );
    let project = dir.path().join("shop");
    assert_eq!(
        std::fs::read_to_string(project.join("conf/deployment-config.toml")).unwrap(),
        std::fs::read_to_string(&given).unwrap()
    );
    let docker = project.join("target/docker");
    assert_eq!(
        std::fs::read(docker.join("shop")).unwrap(),
        std::fs::read(project.join("target/shop")).unwrap(),
        "the image gets the built binary"
    );
    assert!(docker.join("conf/tls/cert.pem").is_file());
    assert!(
        !docker.join("conf/tls/key.pem").exists()
            && !docker.join("conf/apikey/signing-key.pem").exists(),
        "private keys never go into the image"
    );
    let manifests = project.join("target/kubernetes");
    let deployment = std::fs::read_to_string(manifests.join("shop-deployment.yaml")).unwrap();
    assert!(
        deployment.contains("terminationGracePeriodSeconds: 40"),
        "5 + 30 + 5\n{deployment}"
    );

    // The image's layout (/mgw/shop/target/shop and /mgw/shop/conf/) starts with no variable:
    // the gateway finds conf/micro-gw.toml beside its own folder. The TLS key is a mounted
    // secret there, so this run has HTTPS off.
    let root = tempfile::tempdir().unwrap();
    let home = root.path().join("mgw/shop");
    std::fs::create_dir_all(home.join("target")).unwrap();
    std::fs::copy(docker.join("shop"), home.join("target/shop")).unwrap();
    copy_tree(&docker.join("conf"), &home.join("conf"));
    let gw = GatewayProcess::start(
        &home.join("target/shop"),
        &["--listener.https_enabled=false".to_string()],
        false,
    );
    let reply = client::get(&format!("http://{}/health", gw.http)).await;
    assert_eq!(reply.status, StatusCode::OK);
    drop(gw);

    // A wrong key stops the build before compiling, with the file, the line and the fix.
    harness::write_file(
        dir.path(),
        "shop/conf/deployment-config.toml",
        "[kubernetes.kubernetesDeployment]\nenable = true\nreplica = 2\n",
    );
    let build = harness::micro_gw(dir.path(), &["build", "shop"]);
    let output = harness::text(&build);
    assert!(!build.status.success(), "{output}");
    assert!(
        output.contains("conf/deployment-config.toml:3: unknown field `replica`"),
        "{output}"
    );
    assert!(output.contains("docs/deployment.md"), "{output}");
    assert!(!output.contains("Compiling gateway"), "{output}");
}
