//! OTLP export of the gateway's spans (issue 15, tracing): a project whose conf sets
//! `[tracing] otlp_endpoint` is built with the `otlp` feature and posts one server span per
//! sampled request to a real OTLP/HTTP receiver (`mgw_e2e::otlp`); a collector that is down
//! costs the requests nothing; a gateway built without the feature refuses the setting.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use http::{Method, StatusCode};
use mgw_e2e::backend;
use mgw_e2e::client::{self, Protocol};
use mgw_e2e::harness::{self, GatewayProcess};
use mgw_e2e::otlp::{self, Value};

use crate::routing_project;

const CLIENT_SPAN: &str = "00f067aa0ba902b7";

struct OtlpProject {
    _dir: tempfile::TempDir,
    binary: PathBuf,
}

/// The Petstore, with `[tracing] otlp_endpoint` set in its conf (a placeholder: each test
/// gives its collector's address at start-up).
fn otlp_project() -> &'static OtlpProject {
    static PROJECT: OnceLock<OtlpProject> = OnceLock::new();
    PROJECT.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let init = harness::micro_gw(dir.path(), &["init", "otlpgw"]);
        assert!(init.status.success(), "{}", harness::text(&init));
        let petstore =
            std::fs::read_to_string(harness::workspace_root().join("docs/examples/petstore.yaml"))
                .expect("bundled example");
        let project = dir.path().join("otlpgw");
        harness::write_file(&project.join("api_definitions"), "petstore.yaml", &petstore);
        let conf = project.join("conf/micro-gw.toml");
        let text = std::fs::read_to_string(&conf).expect("conf");
        let text = text.replace(
            "otlp_endpoint = \"\"",
            "otlp_endpoint = \"http://127.0.0.1:4318\"",
        );
        assert!(text.contains("otlp_endpoint = \"http://"), "{text}");
        std::fs::write(&conf, text).expect("conf");
        let build = harness::micro_gw(dir.path(), &["build", "otlpgw", harness::ALL_PARTS]);
        assert!(build.status.success(), "{}", harness::text(&build));
        let manifest = std::fs::read_to_string(project.join("target/gen/Cargo.toml")).unwrap();
        assert!(
            manifest.contains("default = [\"otlp\", \"mimalloc\"]"),
            "{manifest}"
        );
        OtlpProject {
            binary: project.join("target/otlpgw"),
            _dir: dir,
        }
    })
}

fn start(backend: &backend::Backend, endpoint: &str, extra: &[&str]) -> GatewayProcess {
    let mut args = vec![
        format!("--petstoreBackend_prod_endpoint_0={}", backend.url()),
        format!("--tracing.otlp_endpoint={endpoint}"),
        "--tracing.otlp_interval_ms=100".to_string(),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    GatewayProcess::start(&otlp_project().binary, &args, false)
}

/// `GET /petstore/v1/pet/<pet>` with `headers`; the `traceparent` the backend received.
async fn get(gw: &GatewayProcess, pet: &str, headers: &[(&str, &str)]) -> String {
    let reply = client::send(
        Protocol::Http1,
        Method::GET,
        &format!("http://{}/petstore/v1/pet/{pet}", gw.http),
        headers,
        client::empty(),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert_eq!(reply.status, StatusCode::OK);
    reply.json()["headers"]["traceparent"]
        .as_str()
        .expect("a traceparent upstream")
        .to_string()
}

fn string(value: Option<&Value>) -> Option<&str> {
    match value {
        Some(Value::StringValue(s)) => Some(s),
        _ => None,
    }
}

fn int(value: Option<&Value>) -> Option<i64> {
    match value {
        Some(Value::IntValue(i)) => Some(*i),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sampled_requests_are_exported_as_server_spans() {
    let be = backend::spawn("b1", SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let collector = otlp::spawn().await.unwrap();
    let gw = start(&be, &collector.endpoint(), &[]);

    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let sent = get(
        &gw,
        "7",
        &[("traceparent", &format!("00-{trace}-{CLIENT_SPAN}-01"))],
    )
    .await;
    let gateway_span = sent.split('-').nth(2).unwrap().to_string();
    let span = collector
        .wait_for_trace(trace, Duration::from_secs(10))
        .await
        .expect("the span at the collector");
    assert_eq!(
        span.span_id(),
        gateway_span,
        "the id the upstream saw as its parent"
    );
    assert_eq!(span.parent_span_id(), CLIENT_SPAN);
    assert_eq!(span.span.kind, 2, "SPAN_KIND_SERVER");
    assert_eq!(span.span.name, "GET /petstore/v1/pet/{petId}");
    assert!(span.span.start_time_unix_nano > 0);
    assert!(span.span.end_time_unix_nano >= span.span.start_time_unix_nano);
    let attr = |key: &str| span.attribute(key);
    assert_eq!(string(attr("http.request.method")), Some("GET"));
    assert_eq!(string(attr("http.route")), Some("/petstore/v1/pet/{petId}"));
    assert_eq!(string(attr("url.path")), Some("/petstore/v1/pet/7"));
    assert_eq!(string(attr("url.scheme")), Some("http"));
    assert_eq!(int(attr("http.response.status_code")), Some(200));
    assert_eq!(string(attr("client.address")), Some("127.0.0.1"));
    // The listener's port, which the settings left to the system (port 0).
    assert_eq!(int(attr("server.port")), Some(i64::from(gw.http.port())));
    assert!(string(attr("mgw.api")).is_some_and(|api| !api.is_empty()));
    assert_eq!(attr("error.type"), None);
    // Status unset (code 0) for a success.
    assert_eq!(span.span.status.as_ref().map_or(0, |s| s.code), 0);
    assert_eq!(
        string(span.resource_attribute("service.name")),
        Some("otlpgw")
    );
    assert!(string(span.resource_attribute("service.version")).is_some());

    // A trace the gateway starts: a root span (no parent), its id the upstream's parent.
    let sent = get(&gw, "8", &[]).await;
    let fields: Vec<&str> = sent.split('-').collect();
    let root = collector
        .wait_for_trace(fields[1], Duration::from_secs(10))
        .await
        .expect("the root span");
    assert_eq!(root.span_id(), fields[2]);
    assert_eq!(root.parent_span_id(), "");

    // Unsampled (flags 00): no span. A sampled request sent after it arrives, and the
    // unsampled one is still not there.
    let unsampled = "11111111111111111111111111111111";
    get(
        &gw,
        "9",
        &[("traceparent", &format!("00-{unsampled}-{CLIENT_SPAN}-00"))],
    )
    .await;
    let marker = "22222222222222222222222222222222";
    get(
        &gw,
        "10",
        &[("traceparent", &format!("00-{marker}-{CLIENT_SPAN}-01"))],
    )
    .await;
    collector
        .wait_for_trace(marker, Duration::from_secs(10))
        .await
        .expect("the marker span");
    assert!(collector.spans().iter().all(|s| s.trace_id() != unsampled));
    // An unrouted request is named by its method alone.
    let reply = client::send(
        Protocol::Http1,
        Method::GET,
        &format!("http://{}/nowhere", gw.http),
        &[(
            "traceparent",
            &format!("00-{}-{CLIENT_SPAN}-01", "3".repeat(32)),
        )],
        client::empty(),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    let unrouted = collector
        .wait_for_trace(&"3".repeat(32), Duration::from_secs(10))
        .await
        .expect("the 404's span");
    assert_eq!(unrouted.span.name, "GET");
    assert_eq!(
        int(unrouted.attribute("http.response.status_code")),
        Some(404)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_collector_that_is_down_costs_the_requests_nothing() {
    let be = backend::spawn("b1", SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let down = format!("http://127.0.0.1:{}", harness::closed_port());
    let gw = start(&be, &down, &["--tracing.otlp_timeout_ms=300"]);
    let started = Instant::now();
    for pet in 0..30 {
        get(&gw, &pet.to_string(), &[]).await;
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "30 requests took {:?}",
        started.elapsed()
    );
    let warning = gw
        .wait_for_log("OTLP export to", Duration::from_secs(10))
        .expect("a warning about the collector");
    assert!(warning.contains("failed"), "{warning}");
    assert!(warning.contains("/v1/traces"), "{warning}");
    // Still serving after the failed exports.
    get(&gw, "31", &[]).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_sends_the_queued_spans() {
    let be = backend::spawn("b1", SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let collector = otlp::spawn().await.unwrap();
    // Exports every minute only: the span is still queued when the gateway is stopped.
    let mut gw = start(
        &be,
        &collector.endpoint(),
        &["--tracing.otlp_interval_ms=60000"],
    );
    let trace = "5".repeat(32);
    get(
        &gw,
        "1",
        &[("traceparent", &format!("00-{trace}-{CLIENT_SPAN}-01"))],
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(collector.spans().is_empty(), "not exported before the stop");
    gw.terminate();
    let status = gw
        .wait_exit(Duration::from_secs(20))
        .expect("the gateway exits");
    assert!(status.success(), "{status}");
    assert!(
        collector
            .wait_for_trace(&trace, Duration::from_secs(2))
            .await
            .is_some(),
        "the queued span was sent at the stop"
    );
}

/// The routing project was built without OTLP (its conf leaves `otlp_endpoint` empty): asked
/// for it at start-up, it exits with a message naming the setting and the fix.
#[test]
fn a_gateway_built_without_otlp_refuses_the_setting() {
    let child = Command::new(&routing_project().binary)
        .args([
            "--listener.http_port=0",
            "--listener.https_port=0",
            "--metrics.port=0",
        ])
        .env("MGW_TRACING_OTLP_ENDPOINT", "http://127.0.0.1:4318")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting the gateway");
    let (status, stderr) = harness::wait_for_refusal(child, Duration::from_secs(20));
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("otlp_endpoint"), "{stderr}");
    assert!(stderr.contains("run `micro-gw build` again"), "{stderr}");
}
