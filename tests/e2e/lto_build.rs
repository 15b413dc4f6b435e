//! `micro-gw build --lto`: the base gateway for a set of runtime features is compiled and
//! optimised once, and each project's binary is a copy of it with the project's model attached
//! (`mgw_runtime::attached_model`).

use mgw_e2e::backend;
use mgw_e2e::client;
use mgw_e2e::harness::{self, micro_gw, text, write_file, GatewayProcess};
use mgw_runtime::attached_model;
use std::path::Path;

/// A definition serving `GET <base>/ping` from `upstream`.
fn definition(base: &str, upstream: &str) -> String {
    format!(
        "openapi: 3.0.0
info: {{title: Lto, version: '1'}}
x-wso2-basePath: {base}
x-wso2-disable-security: true
x-wso2-production-endpoints: {{urls: ['{upstream}']}}
paths:
  /ping: {{get: {{}}}}
"
    )
}

/// The binary's bytes before its model, and its model, as the gateway reads them
/// (`mgw_runtime::attached_model`).
fn split(binary: &Path) -> (Vec<u8>, Vec<u8>) {
    let model = attached_model::read(binary).expect("no model attached");
    let mut bytes = std::fs::read(binary).unwrap();
    bytes.truncate(bytes.len() - attached_model::TRAILER_LEN - model.len());
    (bytes, model)
}

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_lto_build_optimises_one_base_and_attaches_each_projects_model() {
    let be = backend::spawn("lto", "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let build = |name: &str, base: &str| {
        let project = dir.path().join(name);
        if !project.exists() {
            let init = micro_gw(dir.path(), &["init", name]);
            assert!(init.status.success(), "{}", text(&init));
        }
        write_file(
            &project.join("api_definitions"),
            "api.yaml",
            &definition(base, &be.url()),
        );
        let out = micro_gw(dir.path(), &["build", name, "--lto"]);
        assert!(out.status.success(), "{}", text(&out));
        (project.join("target").join(name), out)
    };

    let (one, _) = build("one", "/one");
    let (two, out) = build("two", "/two");
    // The second project needs the same runtime features: cargo found the base up to date.
    assert!(
        stdout(&out).contains("base gateway for these runtime features was up to date"),
        "{}",
        text(&out)
    );
    let (one_code, one_model) = split(&one);
    let (two_code, two_model) = split(&two);
    assert!(one_code == two_code, "the two projects' code differs");
    assert!(one_code.starts_with(b"\x7fELF"));
    // The model attached is the one the build generated.
    assert_eq!(
        one_model,
        std::fs::read(dir.path().join("one/target/gen/model.json")).unwrap()
    );
    assert_ne!(one_model, two_model);

    // Each binary serves its own project.
    for (binary, own, other) in [(&one, "/one", "/two"), (&two, "/two", "/one")] {
        let gw = GatewayProcess::start(binary, &[], false);
        let reply = client::get(&format!("http://{}{own}/ping", gw.http)).await;
        assert_eq!(reply.status, 200, "{own} on {}", binary.display());
        assert_eq!(reply.header("x-backend"), Some("lto"));
        let reply = client::get(&format!("http://{}{other}/ping", gw.http)).await;
        assert_eq!(reply.status, 404, "{other} on {}", binary.display());
    }

    // A rebuild after a definition changed attaches the new model to the same code.
    let (again, out) = build("one", "/uno");
    assert!(stdout(&out).contains("was up to date"), "{}", text(&out));
    let (again_code, _) = split(&again);
    assert!(again_code == one_code, "the rebuild's code differs");
    let gw = GatewayProcess::start(&again, &[], false);
    let reply = client::get(&format!("http://{}/uno/ping", gw.http)).await;
    assert_eq!(reply.status, 200);
    drop(gw);

    // A copy that lost its model (as strip would leave it) refuses to start and says why.
    let cut = dir.path().join("cut");
    std::fs::write(&cut, &one_code).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&cut, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let out = harness::spawn_executable(
        std::process::Command::new(&cut)
            .arg("--listener.http_port=0")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped()),
    )
    .unwrap()
    .wait_with_output()
    .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("cut: "), "{err}");
    assert!(
        err.contains(&format!("{} has no model attached", cut.display())),
        "{err}"
    );
    assert!(err.contains("micro-gw build <project> --lto"), "{err}");
}
