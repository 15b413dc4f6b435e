//! Express Gateway configurations: `micro-gw import --express-gateway`, the build's report of
//! unsupported steps, and gateways serving Kargo's real configuration
//! (`tests/fixtures/kargo/gateway.config.yml`) against test backends; behaviour expected from
//! what EG 1.16.11 answered live, recorded in `tests/fixtures/eg-observed/` (see its README).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use http::Method;
use mgw_e2e::backend;
use mgw_e2e::client::{self, Protocol, Reply};
use mgw_e2e::harness::{self, GatewayProcess};

fn kargo_text() -> String {
    std::fs::read_to_string(harness::fixtures_dir().join("kargo/gateway.config.yml"))
        .expect("Kargo fixture")
}

fn init(dir: &Path, name: &str) {
    let init = harness::micro_gw(dir, &["init", name]);
    assert!(init.status.success(), "{}", harness::text(&init));
}

/// Imports the Express Gateway configuration `eg` into the project `name` in `dir` and builds
/// it (`build_args` added to `micro-gw build`), both asserted to succeed; the gateway binary.
fn import_and_build(dir: &Path, name: &str, eg: &Path, build_args: &[&str]) -> PathBuf {
    let import = harness::micro_gw(
        dir,
        &["import", name, "--express-gateway", eg.to_str().unwrap()],
    );
    assert!(import.status.success(), "{}", harness::text(&import));
    let build = harness::micro_gw(dir, &[&["build", name][..], build_args].concat());
    assert!(build.status.success(), "{}", harness::text(&build));
    dir.join(name).join("target").join(name)
}

/// Starts the gateway `binary` with its Express Gateway listener on a free loopback port; the
/// process and that port.
fn start_express(binary: &Path) -> (GatewayProcess, u16) {
    let port = free_port();
    let gw = GatewayProcess::start(
        binary,
        &[format!("--express_gateway.http_port={port}")],
        false,
    );
    (gw, port)
}

/// Issue 12 items 2 and 5, issue 13 item 6: Kargo's configuration imports unchanged (byte for
/// byte) and builds as it is: every policy of its pipelines is built in.
#[test]
fn kargo_imports_unchanged_and_the_build_lists_unsupported_steps() {
    let dir = tempfile::tempdir().unwrap();
    init(dir.path(), "kargo");
    let fixtures = harness::fixtures_dir().join("kargo");
    let gateway = fixtures.join("gateway.config.yml");
    let system = fixtures.join("system.config.yml");
    let import = harness::micro_gw(
        dir.path(),
        &[
            "import",
            "kargo",
            "--express-gateway",
            gateway.to_str().unwrap(),
            "--system-config",
            system.to_str().unwrap(),
        ],
    );
    let out = harness::text(&import);
    assert!(import.status.success(), "{out}");
    assert!(
        out.contains("Imported Express Gateway configuration"),
        "{out}"
    );
    // Every policy of Kargo's pipelines is built in (issue 13): nothing to refuse.
    assert!(!out.contains("will refuse"), "{out}");
    // Its db.redis became the project's [store] (issue 13 item 1).
    assert!(
        out.contains("Consumer store: Redis redis://redis:6379 namespace \"EG\""),
        "{out}"
    );
    let conf = std::fs::read_to_string(dir.path().join("kargo/conf/micro-gw.toml")).unwrap();
    assert!(
        conf.contains("\nredis = \"redis://redis:6379\"\n"),
        "{conf}"
    );
    assert!(conf.contains("\nredis_namespace = \"EG\"\n"), "{conf}");
    let copied = dir.path().join("kargo/express-gateway");
    assert_eq!(
        std::fs::read(copied.join("gateway.config.yml")).unwrap(),
        std::fs::read(&gateway).unwrap()
    );
    assert_eq!(
        std::fs::read(copied.join("system.config.yml")).unwrap(),
        std::fs::read(&system).unwrap()
    );

    let build = harness::micro_gw(dir.path(), &["build", "kargo", harness::ALL_PARTS]);
    let out = harness::text(&build);
    assert!(build.status.success(), "{out}");
    assert!(!out.contains("is not supported yet"), "{out}");
    // --features adds to what the project needs, and the binary has them all.
    assert!(
        out.contains("Runtime parts compiled in on request (--features): validation, otlp\n"),
        "{out}"
    );
    let version = std::process::Command::new(dir.path().join("kargo/target/kargo"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&version.stdout)
            .contains("optional parts: storage, validation, otlp, redis)\n"),
        "{}",
        harness::text(&version)
    );
    // Every plugin of Kargo is built in (the storage route too): none is named as not loaded,
    // and the project's gateway enables the runtime's storage feature, and the Redis client
    // (its db.redis holds the consumers).
    assert!(!out.contains("plugins are not loaded"), "{out}");
    let manifest = std::fs::read_to_string(dir.path().join("kargo/target/gen/Cargo.toml")).unwrap();
    assert!(
        manifest.contains("default = [\"storage\", \"redis\", \"mimalloc\"]"),
        "{manifest}"
    );
    assert!(dir.path().join("kargo/target/kargo").exists());
}

/// A failed import (not YAML, a missing file, an undeclared policy) names the file, line and
/// column, and leaves the previous import in place; importing again replaces it.
#[test]
fn failed_imports_leave_the_previous_state_and_reimport_replaces() {
    let dir = tempfile::tempdir().unwrap();
    init(dir.path(), "eg");
    let good = harness::write_file(
        dir.path(),
        "good.yml",
        "http: {port: 8080}\nserviceEndpoints: {b: {url: 'http://127.0.0.1:1'}}\npolicies: [proxy]\napiEndpoints: {e: {path: /e}}\npipelines:\n  p:\n    apiEndpoints: [e]\n    policies: [{proxy: {action: {serviceEndpoint: b}}}]\n",
    );
    let import =
        |file: &str| harness::micro_gw(dir.path(), &["import", "eg", "--express-gateway", file]);
    let first = import(good.to_str().unwrap());
    assert!(first.status.success(), "{}", harness::text(&first));
    let copy = dir.path().join("eg/express-gateway/gateway.config.yml");
    let before = std::fs::read(&copy).unwrap();

    harness::write_file(dir.path(), "broken.yml", "http:\n  port: [8080\n");
    let broken = import("broken.yml");
    let out = harness::text(&broken);
    assert!(!broken.status.success(), "{out}");
    assert!(out.contains("broken.yml:3:1: not valid YAML"), "{out}");
    assert!(out.contains("the project is unchanged"), "{out}");

    let missing = import("nowhere.yml");
    assert!(harness::text(&missing).contains("nowhere.yml does not exist"));

    harness::write_file(
        dir.path(),
        "undeclared.yml",
        "http: {port: 8080}\npolicies: []\npipelines:\n  p:\n    apiEndpoints: []\n    policies:\n      - terminate:\n",
    );
    let undeclared = import("undeclared.yml");
    let out = harness::text(&undeclared);
    assert!(
        out.contains("undeclared.yml:7: pipeline 'p' uses the policy 'terminate'"),
        "{out}"
    );
    assert_eq!(std::fs::read(&copy).unwrap(), before);

    let replaced = import(good.to_str().unwrap());
    assert!(harness::text(&replaced).contains("Replaced the Express Gateway configuration"));
}

/// A free loopback port for an Express Gateway listener (`--express_gateway.http_port`).
use mgw_e2e::harness::free_port;

async fn get(url: &str, headers: &[(&str, &str)], method: Method) -> Reply {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match client::send(
            Protocol::Http1,
            method.clone(),
            url,
            headers,
            client::empty(),
            Duration::from_secs(10),
        )
        .await
        {
            Ok(reply) => return reply,
            Err(err) if Instant::now() < deadline => {
                let _ = err;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(err) => panic!("{url}: {err}"),
        }
    }
}

/// Issue 12 items 5 and 7: Kargo's configuration, its service endpoints pointed at test
/// backends, builds and answers as EG does (reference §7, §9):
/// host routing, stripPath, CORS preflights before authentication, Express's 404.
#[tokio::test(flavor = "multi_thread")]

async fn kargo_serves_stripped_paths_host_routes_preflights_and_404s() {
    let be = backend::spawn_scripted(|_| (200, vec![], "ok".to_string()))
        .await
        .unwrap();
    let authority = be.url().trim_start_matches("http://").to_string();
    let text = kargo_text()
        .replace("http://mapserver:80", &be.url())
        .replace("http://mapcache:80", &be.url())
        .replace("http://k2:8080", &be.url())
        .replace("http://kapture:3000", &be.url())
        .replace("http://localhost:9876", &be.url());
    let dir = tempfile::tempdir().unwrap();
    init(dir.path(), "kargo");
    let file = harness::write_file(dir.path(), "gateway.config.yml", &text);
    let import = harness::micro_gw(
        dir.path(),
        &[
            "import",
            "kargo",
            "--express-gateway",
            file.to_str().unwrap(),
        ],
    );
    assert!(import.status.success(), "{}", harness::text(&import));
    let build = harness::micro_gw(dir.path(), &["build", "kargo"]);
    assert!(build.status.success(), "{}", harness::text(&build));
    let port = free_port();
    let _gw = GatewayProcess::start_with_env(
        &dir.path().join("kargo/target/kargo"),
        &[
            format!("--express_gateway.http_port={port}"),
            format!("--express_gateway.admin_port={}", free_port()),
        ],
        false,
        &[
            ("EXPRESS_GATEWAY_KEY_SECRET", "kargo-secret"),
            ("SUBDOMAIN", "kargo.test"),
        ],
    );
    let base = format!("http://127.0.0.1:{port}");

    // Host routing: the `admin` endpoint serves only Host express-gateway, with stripPath.
    let admin = get(
        &format!("{base}/x"),
        &[("host", "express-gateway")],
        Method::GET,
    )
    .await;
    assert_eq!(admin.status, 200);
    assert_eq!(be.seen().last().unwrap().target, "/x");
    assert_eq!(
        be.seen().last().unwrap().header("host"),
        Some(authority.as_str())
    );
    assert!(be.seen().last().unwrap().header("eg-request-id").is_some());
    // `/metrics` (prometheus, no wildcard) is forwarded to the endpoint path plus `/`.
    let metrics = get(&format!("{base}/metrics"), &[], Method::GET).await;
    assert_eq!(metrics.status, 200);
    assert_eq!(be.seen().last().unwrap().target, "/metrics/");
    // CORS preflight on /wms answered 204 before the (unsupported, pass-through) auth steps.
    let preflight = get(
        &format!("{base}/wms"),
        &[
            ("origin", "https://app.example"),
            ("access-control-request-method", "GET"),
            ("access-control-request-headers", "authorization"),
        ],
        Method::OPTIONS,
    )
    .await;
    assert_eq!(preflight.status, 204);
    assert_eq!(preflight.header("access-control-allow-origin"), Some("*"));
    assert_eq!(
        preflight.header("access-control-allow-methods"),
        Some("GET,HEAD,PUT,PATCH,POST,DELETE")
    );
    assert_eq!(
        preflight.header("access-control-allow-headers"),
        Some("authorization")
    );
    // Anonymous /wms: the response-transformer + terminate steps answer 401 with WWW-Authenticate.
    let anonymous = get(&format!("{base}/WMS?SERVICE=WMS"), &[], Method::GET).await;
    assert_eq!(anonymous.status, 401);
    assert_eq!(anonymous.header("www-authenticate"), Some("Basic"));
    // Express's 404 for what no endpoint serves; `/k2` (no slash) does not match `/k2/*`.
    for path in ["/nothing/here", "/k2"] {
        let missing = get(&format!("{base}{path}"), &[], Method::GET).await;
        assert_eq!(missing.status, 404, "{path}");
        // Express's final handler: an HTML page around `<pre>Cannot GET /x</pre>`
        // (tests/fixtures/eg-observed/kargo).
        let body = String::from_utf8_lossy(&missing.body);
        assert!(
            body.contains(&format!("<pre>Cannot GET {path}</pre>")),
            "{body}"
        );
        assert_eq!(
            missing.header("content-security-policy"),
            Some("default-src 'none'")
        );
        assert_eq!(missing.header("x-content-type-options"), Some("nosniff"));
    }
}

/// Issue 12 items 2 and 7: a WSO2 API and an Express Gateway configuration in one project,
/// on separate ports, each answering in its own dialect.
#[tokio::test(flavor = "multi_thread")]

async fn a_mixed_project_serves_both_families() {
    let be = backend::spawn("mixed", SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    init(dir.path(), "mixed");
    harness::write_file(
        &dir.path().join("mixed/api_definitions"),
        "pets.yaml",
        &format!("openapi: 3.0.0\ninfo: {{title: Pets, version: '1'}}\nx-wso2-basePath: /pets\nx-wso2-disable-security: true\nx-wso2-production-endpoints: {{urls: ['{}']}}\npaths:\n  /x: {{get: {{}}}}\n", be.url()),
    );
    let eg = harness::write_file(
        dir.path(),
        "gateway.config.yml",
        &format!("http: {{port: 8080}}\nserviceEndpoints: {{b: {{url: '{}'}}}}\npolicies: [proxy]\napiEndpoints: {{e: {{path: '/eg/*'}}}}\npipelines:\n  p:\n    apiEndpoints: [e]\n    policies: [{{proxy: {{action: {{serviceEndpoint: b, stripPath: true}}}}}}]\n", be.url()),
    );
    let binary = import_and_build(dir.path(), "mixed", &eg, &[]);
    let (gw, port) = start_express(&binary);
    let wso2 = get(&format!("http://{}/pets/x", gw.http), &[], Method::GET).await;
    assert_eq!(wso2.status, 200);
    let express = get(&format!("http://127.0.0.1:{port}/eg/a/b"), &[], Method::GET).await;
    assert_eq!(express.status, 200);
    let missing = get(&format!("http://127.0.0.1:{port}/pets/x"), &[], Method::GET).await;
    assert_eq!(missing.status, 404);
    assert!(String::from_utf8_lossy(&missing.body).contains("<pre>Cannot GET /pets/x</pre>"));
}

/// The upstream `Host` as EG 1.16's proxy (http-proxy) makes it, observed in
/// `tests/fixtures/eg-observed/policies` ("changeOrigin true over a configured Host",
/// "changeOrigin false, configured Host"): `changeOrigin` replaces even a `host` from
/// `proxyOptions.headers`; without it that one is sent. The field stays where the client put it
/// (http-proxy sets `host` in its copy of Node's header object), and `Connection: host` cannot
/// take it away. Of two `Host` fields the first is sent without `changeOrigin`, and `xfwd` takes
/// `X-Forwarded-Host` and `-Port` from it ("two Host fields, ..."). `proxyOptions.headers` win
/// over the proxy's own `X-Forwarded-For` and trace context (http-proxy merges them last).
#[tokio::test(flavor = "multi_thread")]
async fn the_upstream_host_is_chosen_and_placed_as_express_gateway_does() {
    let be = backend::spawn_scripted(|_| (200, vec![], "ok".to_string()))
        .await
        .unwrap();
    let authority = be.url().trim_start_matches("http://").to_string();
    let dir = tempfile::tempdir().unwrap();
    init(dir.path(), "hosts");
    let options = "proxyOptions: {headers: {host: configured.test, x-configured: '1'}}";
    let eg = harness::write_file(
        dir.path(),
        "gateway.config.yml",
        &format!(
            "http: {{port: 8080}}\nserviceEndpoints: {{b: {{url: '{}'}}}}\npolicies: [proxy]\n\
             apiEndpoints: {{t: {{path: '/t/*'}}, f: {{path: '/f/*'}}, p: {{path: '/p/*'}}, x: {{path: '/x/*'}}, n: {{path: '/n/*'}}, o: {{path: '/o/*'}}}}\n\
             pipelines:\n\
             \x20 t: {{apiEndpoints: [t], policies: [{{proxy: {{action: {{serviceEndpoint: b, changeOrigin: true, stripPath: true, {options}}}}}}}]}}\n\
             \x20 f: {{apiEndpoints: [f], policies: [{{proxy: {{action: {{serviceEndpoint: b, changeOrigin: false, stripPath: true, {options}}}}}}}]}}\n\
             \x20 p: {{apiEndpoints: [p], policies: [{{proxy: {{action: {{serviceEndpoint: b, changeOrigin: true, stripPath: true}}}}}}]}}\n\
             \x20 x: {{apiEndpoints: [x], policies: [{{proxy: {{action: {{serviceEndpoint: b, xfwd: true, stripPath: true}}}}}}]}}\n\
             \x20 n: {{apiEndpoints: [n], policies: [{{proxy: {{action: {{serviceEndpoint: b, changeOrigin: false, stripPath: true}}}}}}]}}\n\
             \x20 o: {{apiEndpoints: [o], policies: [{{proxy: {{action: {{serviceEndpoint: b, xfwd: true, stripPath: true, proxyOptions: {{headers: {{x-forwarded-for: cfg, tracestate: 'x=1'}}}}}}}}}}]}}\n",
            be.url()
        ),
    );
    let binary = import_and_build(dir.path(), "hosts", &eg, &[]);
    let (_gw, port) = start_express(&binary);
    let base = format!("http://127.0.0.1:{port}");
    let names = |seen: &backend::Seen| {
        seen.headers
            .keys()
            .map(|n| n.as_str().to_string())
            .collect::<Vec<_>>()
    };
    for (path, expected) in [
        ("/t/a", authority.as_str()),
        ("/f/a", "configured.test"),
        ("/p/a", authority.as_str()),
    ] {
        let reply = get(
            &format!("{base}{path}"),
            &[("host", "client.test"), ("x-first", "1")],
            Method::GET,
        )
        .await;
        assert_eq!(reply.status, 200, "{path}");
        let seen = be.seen().last().unwrap().clone();
        assert_eq!(seen.header("host"), Some(expected), "{path}");
        assert_eq!(seen.headers.get_all("host").iter().count(), 1, "{path}");
        assert_eq!(
            names(&seen).get(..2),
            Some(&["host".to_string(), "x-first".to_string()][..]),
            "{path}: the Host field where the client put it"
        );
        if path != "/p/a" {
            assert_eq!(seen.header("x-configured"), Some("1"), "{path}");
        }
    }
    // `Connection: host` names a field that is not hop-by-hop: the upstream gets its `Host`.
    let reply = get(
        &format!("{base}/p/a"),
        &[("host", "client.test"), ("connection", "host")],
        Method::GET,
    )
    .await;
    assert_eq!(reply.status, 200);
    let seen = be.seen().last().unwrap().clone();
    assert_eq!(seen.header("host"), Some(authority.as_str()));
    assert_eq!(
        seen.header("x-forwarded-host"),
        None,
        "no xfwd on this route"
    );
    // Two `Host` fields: the first one counts, for the upstream `Host` without `changeOrigin`
    // and for `xfwd`'s fields.
    let two_hosts = [("host", "a.test:81"), ("host", "b.test:82")];
    let reply = get(&format!("{base}/n/a"), &two_hosts, Method::GET).await;
    assert_eq!(reply.status, 200);
    let seen = be.seen().last().unwrap().clone();
    assert_eq!(seen.headers.get_all("host").iter().count(), 1);
    assert_eq!(seen.header("host"), Some("a.test:81"));
    let reply = get(&format!("{base}/x/a"), &two_hosts, Method::GET).await;
    assert_eq!(reply.status, 200);
    let seen = be.seen().last().unwrap().clone();
    assert_eq!(seen.headers.get_all("host").iter().count(), 1);
    assert_eq!(seen.header("host"), Some(authority.as_str()));
    assert_eq!(seen.header("x-forwarded-host"), Some("a.test:81"));
    assert_eq!(seen.header("x-forwarded-port"), Some("81"));
    assert_eq!(seen.header("x-forwarded-proto"), Some("http"));
    assert_eq!(seen.header("x-forwarded-for"), Some("127.0.0.1"));
    // Configured values of the proxy's own fields win, once each.
    let reply = get(
        &format!("{base}/o/a"),
        &[
            ("x-forwarded-for", "10.9.9.9"),
            (
                "traceparent",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            ),
            ("tracestate", "client=1"),
        ],
        Method::GET,
    )
    .await;
    assert_eq!(reply.status, 200);
    let seen = be.seen().last().unwrap().clone();
    let all = |name: &str| {
        seen.headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(all("x-forwarded-for"), ["cfg"]);
    assert_eq!(all("tracestate"), ["x=1"]);
    let traceparent = all("traceparent");
    assert_eq!(traceparent.len(), 1);
    assert!(
        traceparent[0].starts_with("00-4bf92f3577b34da6a3ce929d0e0e4736-"),
        "the client's trace goes on: {traceparent:?}"
    );
    assert_eq!(all("x-forwarded-proto"), ["http"]);
}

/// Issue 12 item 2: `${VAR}` in settings is substituted when the gateway starts; a variable
/// without value or default stops the start-up with a message naming it.
#[tokio::test(flavor = "multi_thread")]

async fn variables_are_substituted_at_start_up_and_a_missing_one_is_named() {
    let be = backend::spawn("vars", SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let port = be.url().rsplit(':').next().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    init(dir.path(), "vars");
    let eg = harness::write_file(
        dir.path(),
        "gateway.config.yml",
        "http: {port: '${EG_HTTP_PORT:-8080}'}\nserviceEndpoints: {b: {url: 'http://${BACKEND_HOST:-127.0.0.1}:${BACKEND_PORT}'}}\npolicies: [proxy]\napiEndpoints: {e: {path: '/*'}}\npipelines:\n  p:\n    apiEndpoints: [e]\n    policies: [{proxy: {action: {serviceEndpoint: b}}}]\n",
    );
    let binary = import_and_build(dir.path(), "vars", &eg, &[]);
    // The secret-free binary does not contain the value.
    let eg_port = free_port();
    let gw = GatewayProcess::start_with_env(
        &binary,
        &[],
        false,
        &[
            ("EG_HTTP_PORT", &eg_port.to_string()),
            ("BACKEND_PORT", &port),
        ],
    );
    let reply = get(&format!("http://127.0.0.1:{eg_port}/a"), &[], Method::GET).await;
    assert_eq!(reply.status, 200);
    drop(gw);
    // Without BACKEND_PORT the gateway refuses to start and names it.
    let out = std::process::Command::new(&binary)
        .args(["--listener.http_port=0", "--listener.https_port=0"])
        .env_remove("BACKEND_PORT")
        .env("MGW_CONF_DIR", dir.path().join("vars/conf"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("BACKEND_PORT is not set"), "{stderr}");
}

/// Issue 12 item 3: `request-transformer` and `response-transformer` body rules through a
/// built gateway: a JSON and a urlencoded request body get fields added and removed with
/// `Content-Length` and `Content-Type` set (EG `lib/policies/request-transformer`), a body of
/// another type is replaced by a JSON object of the added fields, a malformed JSON body and a
/// body over body-parser's 100 kB limit get Express's 400 and 413; a JSON object from the
/// upstream gets its fields changed, anything else passes unchanged.
#[tokio::test(flavor = "multi_thread")]
async fn transformers_rewrite_json_and_form_bodies() {
    let be = backend::spawn_scripted(|seen| match seen.target.as_str() {
        "/text" => (
            200,
            vec![("content-type", "text/plain".into())],
            "plain".into(),
        ),
        "/big" => (200, vec![], big_json()),
        _ => (
            200,
            vec![("content-type", "application/json".into())],
            r#"{"id":7,"secret":"s"}"#.into(),
        ),
    })
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    init(dir.path(), "bodies");
    let eg = harness::write_file(
        dir.path(),
        "gateway.config.yml",
        &format!(
            "http: {{port: 8080}}\nserviceEndpoints: {{b: {{url: '{}'}}}}\npolicies: [proxy, request-transformer, response-transformer]\napiEndpoints: {{e: {{path: '/*'}}}}\npipelines:\n  p:\n    apiEndpoints: [e]\n    policies:\n      - request-transformer:\n          action:\n            body:\n              add: {{gateway: \"'micro-gw'\", method: req.method}}\n              remove: [password]\n      - response-transformer:\n          action:\n            body:\n              add: {{via: \"'gw-' + res.statusCode\"}}\n              remove: [secret]\n      - proxy: {{action: {{serviceEndpoint: b}}}}\n",
            be.url()
        ),
    );
    let binary = import_and_build(dir.path(), "bodies", &eg, &[]);
    let (_gw, port) = start_express(&binary);
    let base = format!("http://127.0.0.1:{port}");
    // Wait until it listens.
    let _ = get(&format!("{base}/text"), &[], Method::GET).await;
    let post = |path: &'static str, content_type: &'static str, body: String| {
        let url = format!("{base}{path}");
        async move {
            client::send(
                Protocol::Http1,
                Method::POST,
                &url,
                &[("content-type", content_type)],
                client::full(body),
                Duration::from_secs(10),
            )
            .await
            .unwrap()
        }
    };

    // JSON: fields added and removed, order kept, length set; the response object rewritten.
    let reply = post(
        "/json",
        "application/json",
        r#"{"user":"ann","password":"x"}"#.into(),
    )
    .await;
    assert_eq!(reply.status, 200);
    let seen = be.seen().last().unwrap().clone();
    assert_eq!(
        seen.body,
        r#"{"user":"ann","gateway":"micro-gw","method":"POST"}"#
    );
    assert_eq!(seen.header("content-type"), Some("application/json"));
    assert_eq!(
        seen.header("content-length"),
        Some(seen.body.len().to_string().as_str())
    );
    assert_eq!(
        String::from_utf8_lossy(&reply.body),
        r#"{"id":7,"via":"gw-200"}"#
    );
    assert_eq!(
        reply.header("content-length"),
        Some(reply.body.len().to_string().as_str())
    );

    // urlencoded: the form rewritten as a form.
    let reply = post(
        "/form",
        "application/x-www-form-urlencoded",
        "user=ann&password=x".into(),
    )
    .await;
    assert_eq!(reply.status, 200);
    let seen = be.seen().last().unwrap().clone();
    assert_eq!(seen.body, "user=ann&gateway=micro-gw&method=POST");
    assert_eq!(
        seen.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );

    // Another type: not read, replaced by the added fields as JSON; a text response untouched.
    let reply = post("/text", "text/plain", "hello".into()).await;
    assert_eq!(reply.status, 200);
    assert_eq!(String::from_utf8_lossy(&reply.body), "plain");
    let seen = be.seen().last().unwrap().clone();
    assert_eq!(seen.body, r#"{"gateway":"micro-gw","method":"POST"}"#);

    // Malformed JSON: Express's 400 page, nothing forwarded.
    let before = be.seen().len();
    let reply = post("/json", "application/json", "{nope".into()).await;
    assert_eq!(reply.status, 400);
    assert!(String::from_utf8_lossy(&reply.body).contains("<pre>Bad Request</pre>"));
    // Over body-parser's 100 kB: 413.
    let big = format!(r#"{{"pad":"{}"}}"#, "x".repeat(110 * 1024));
    let reply = post("/json", "application/json", big).await;
    assert_eq!(reply.status, 413);
    assert!(String::from_utf8_lossy(&reply.body).contains("<pre>Payload Too Large</pre>"));
    assert_eq!(
        be.seen().len(),
        before,
        "refused bodies never reach the upstream"
    );

    // A response body over the 1 MiB the transformer reads streams through unchanged.
    let reply = get(&format!("{base}/big"), &[], Method::GET).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body.len(), big_json().len());
    assert!(reply.body.ends_with(br#""secret":"s"}"#));
}

fn big_json() -> String {
    format!(r#"{{"pad":"{}","secret":"s"}}"#, "y".repeat(1536 * 1024))
}

/// `openssl req -x509` as users make a certificate for EG's `https.tls` (RSA, PKCS#8 key);
/// `None`, with a notice, when the openssl CLI is missing or fails.
fn openssl_self_signed(dir: &Path, stem: &str, name: &str) -> Option<mgw_e2e::sni::PemFiles> {
    let cert = dir.join(format!("{stem}.crt"));
    let key = dir.join(format!("{stem}.key"));
    let out = std::process::Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .args(["-subj", &format!("/CN={name}")])
        .args(["-addext", &format!("subjectAltName=DNS:{name}")])
        .output();
    match out {
        Ok(out) if out.status.success() => {
            let der = mgw_e2e::sni::pem_certificate_der(&cert);
            Some(mgw_e2e::sni::PemFiles { cert, key, der })
        }
        Ok(out) => {
            eprintln!(
                "NOTICE: openssl req -x509 failed ({}): the default certificate is made with rcgen instead",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            None
        }
        Err(err) => {
            eprintln!(
                "NOTICE: the openssl CLI is not available ({err}): the default certificate is made with rcgen instead"
            );
            None
        }
    }
}

/// Issue 12 item 2: EG's `https` listener through a built gateway. `https.tls` holds two SNI
/// patterns and `default` (made here: two with rcgen, the default with the real
/// `openssl req -x509` CLI when it is installed); the port comes from
/// `--express_gateway.https_port`. Each SNI name gets the certificate of the first pattern
/// that matches it in declaration order (minimatch: `*` crosses dots), an unknown name and a
/// connection without SNI get `default`, and a request proxied over TLS (verified against the
/// wildcard certificate) reaches the backend.
#[tokio::test(flavor = "multi_thread")]
async fn https_listener_chooses_certificates_by_sni_and_proxies() {
    let be = backend::spawn("tls-backend", SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    let wildcard = mgw_e2e::sni::self_signed(&certs, "wildcard", &["*.example.com"]);
    let admin = mgw_e2e::sni::self_signed(&certs, "admin", &["admin.test"]);
    let default = openssl_self_signed(&certs, "default", "default.test")
        .unwrap_or_else(|| mgw_e2e::sni::self_signed(&certs, "default", &["default.test"]));
    init(dir.path(), "tls");
    let tls_entry = |files: &mgw_e2e::sni::PemFiles| {
        format!(
            "{{key: '{}', cert: '{}'}}",
            files.key.display(),
            files.cert.display()
        )
    };
    let eg = harness::write_file(
        dir.path(),
        "gateway.config.yml",
        &format!(
            "http: {{port: 8080}}\nhttps:\n  port: 8443\n  hostname: 127.0.0.1\n  tls:\n    '*.example.com': {}\n    'admin.test': {}\n    'api.example.com': {}\n    default: {}\nserviceEndpoints: {{b: {{url: '{}'}}}}\npolicies: [proxy]\napiEndpoints: {{e: {{path: '/*'}}}}\npipelines:\n  p:\n    apiEndpoints: [e]\n    policies: [{{proxy: {{action: {{serviceEndpoint: b}}}}}}]\n",
            tls_entry(&wildcard),
            tls_entry(&admin),
            // Declared after the wildcard that also matches it: never chosen.
            tls_entry(&admin),
            tls_entry(&default),
            be.url()
        ),
    );
    let binary = import_and_build(dir.path(), "tls", &eg, &[]);
    let (http_port, https_port) = (free_port(), free_port());
    let _gw = GatewayProcess::start(
        &binary,
        &[
            format!("--express_gateway.http_port={http_port}"),
            format!("--express_gateway.https_port={https_port}"),
        ],
        false,
    );
    let addr = SocketAddr::from(([127, 0, 0, 1], https_port));
    // The listener may still be starting.
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {addr}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for (name, expected, which) in [
        (
            "api.example.com",
            &wildcard,
            "the first matching pattern, *.example.com",
        ),
        ("deep.a.example.com", &wildcard, "* crosses dots"),
        ("admin.test", &admin, "admin.test"),
        ("unknown.test", &default, "default for an unknown name"),
        ("example.com", &default, "*.example.com needs a label"),
        ("127.0.0.1", &default, "default without SNI"),
    ] {
        let (_, presented) = mgw_e2e::sni::connect(addr, name, None)
            .await
            .unwrap_or_else(|e| panic!("TLS handshake offering {name}: {e}"));
        assert!(
            presented == expected.der,
            "{name}: expected {which} ({})",
            expected.cert.display()
        );
    }
    // A verifying client (trusting only the wildcard certificate) and a proxied request.
    let (mut tls, _) = mgw_e2e::sni::connect(addr, "api.example.com", Some(&wildcard.cert))
        .await
        .expect("a verified TLS handshake");
    let (status, _head, body) =
        mgw_e2e::sni::get_close(&mut tls, "api.example.com", "/over/tls?x=1").await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let text = String::from_utf8_lossy(&body);
    assert!(
        text.contains(r#""backend":"tls-backend""#) && text.contains(r#""path":"/over/tls""#),
        "the backend answered: {text}"
    );
    assert_eq!(be.request_count(), 1);
    // The same gateway keeps its plain http listener.
    let plain = get(
        &format!("http://127.0.0.1:{http_port}/plain"),
        &[],
        Method::GET,
    )
    .await;
    assert_eq!(plain.status, 200);
    // A client verifying against the admin certificate refuses the wildcard's name.
    assert!(
        mgw_e2e::sni::connect(addr, "api.example.com", Some(&admin.cert))
            .await
            .is_err(),
        "the wildcard certificate does not verify against the admin one"
    );
}

/// Issue 14 item 4: EG's `json-schema` condition choosing a step (`lib/conditions/
/// json-schema.js`): a JSON or urlencoded body that matches the schema (form fields coerced as
/// Ajv's `coerceTypes` does) takes the conditioned `proxy` step and reaches the upstream byte for
/// byte; one that does not, a body of another type and no body fall through to `terminate`; a
/// malformed JSON body and one over body-parser's 100 kB get Express's 400 and 413.
#[tokio::test(flavor = "multi_thread")]
async fn json_schema_condition_chooses_the_step_and_forwards_the_body_intact() {
    let be = backend::spawn_scripted(|_| (200, vec![], "upstream".into()))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    init(dir.path(), "orders");
    let eg = harness::write_file(
        dir.path(),
        "gateway.config.yml",
        &format!(
            "http: {{port: 8080}}\nserviceEndpoints: {{b: {{url: '{}'}}}}\npolicies: [proxy, terminate]\napiEndpoints: {{e: {{path: '/*'}}}}\npipelines:\n  p:\n    apiEndpoints: [e]\n    policies:\n      - proxy:\n          - condition:\n              name: json-schema\n              logErrors: true\n              schema:\n                $id: order\n                type: object\n                required: [item, qty]\n                properties:\n                  item: {{type: string, minLength: 1}}\n                  qty: {{type: integer, minimum: 1}}\n            action: {{serviceEndpoint: b}}\n      - terminate: {{action: {{statusCode: 422, message: not an order}}}}\n",
            be.url()
        ),
    );
    let binary = import_and_build(dir.path(), "orders", &eg, &[harness::ALL_PARTS]);
    let (_gw, port) = start_express(&binary);
    let base = format!("http://127.0.0.1:{port}");
    let _ = get(&format!("{base}/ready"), &[], Method::GET).await;
    let post = |content_type: &'static str, body: String| {
        let url = format!("{base}/orders");
        async move {
            client::send(
                Protocol::Http1,
                Method::POST,
                &url,
                &[("content-type", content_type)],
                client::full(body),
                Duration::from_secs(10),
            )
            .await
            .unwrap()
        }
    };

    // A matching JSON body: proxied, byte for byte (spacing and key order kept).
    let json = "{ \"qty\" : 2,\n  \"item\": \"tea\", \"note\": \"é\" }";
    let reply = post("application/json", json.into()).await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    assert_eq!(String::from_utf8_lossy(&reply.body), "upstream");
    let seen = be.seen().last().unwrap().clone();
    assert_eq!(seen.body, json);
    assert_eq!(seen.header("content-type"), Some("application/json"));

    // A matching form: `qty=2` is the string "2", which Ajv coerces to the integer.
    let reply = post("application/x-www-form-urlencoded", "item=tea&qty=2".into()).await;
    assert_eq!(reply.status, 200);
    assert_eq!(be.seen().last().unwrap().body, "item=tea&qty=2");

    // Not matching, another type, no body: the condition is false, `terminate` answers.
    let before = be.seen().len();
    for (content_type, body) in [
        ("application/json", r#"{"item":"tea","qty":0}"#),
        ("application/x-www-form-urlencoded", "item=tea&qty=two"),
        ("text/plain", r#"{"item":"tea","qty":2}"#),
    ] {
        let reply = post(content_type, body.into()).await;
        assert_eq!(reply.status, 422, "{content_type} {body}");
        assert_eq!(String::from_utf8_lossy(&reply.body), "not an order");
    }
    let reply = get(&format!("{base}/orders"), &[], Method::GET).await;
    assert_eq!(reply.status, 422);

    // Express's parsers refuse: 400 for JSON that is not, 413 past 100 kB.
    let reply = post("application/json", "{nope".into()).await;
    assert_eq!(reply.status, 400);
    assert!(String::from_utf8_lossy(&reply.body).contains("<pre>Bad Request</pre>"));
    let big = format!(r#"{{"item":"{}","qty":1}}"#, "x".repeat(110 * 1024));
    let reply = post("application/json", big).await;
    assert_eq!(reply.status, 413);
    assert_eq!(be.seen().len(), before, "nothing else reached the upstream");
}
