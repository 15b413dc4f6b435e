//! Prometheus metrics on their own listener (`[metrics]`): a real built gateway, real requests
//! (2xx, 4xx, 401, an upstream that refuses), a real scrape of `/metrics`; the number of series
//! stays bounded whatever paths and methods clients send; `enabled = false` opens no listener.

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use mgw_e2e::backend;
use mgw_e2e::client;
use mgw_e2e::harness::{self, GatewayProcess};
use mgw_e2e::raw;

/// An open API (its endpoint given at start-up), an OAuth2-secured one and one whose endpoint
/// refuses connections.
const DEFINITIONS: &[(&str, &str)] = &[
    (
        "open.yaml",
        "openapi: 3.0.0
info: {title: Open, version: '1'}
x-wso2-basePath: /open
x-wso2-disable-security: true
x-wso2-endpoints:
  - openBackend: {urls: ['http://127.0.0.1:1']}
x-wso2-production-endpoints: '#/x-wso2-endpoints/openBackend'
paths:
  /items/{id}: {get: {}}
",
    ),
    (
        "secured.yaml",
        "openapi: 3.0.0
info: {title: Secured, version: '1'}
x-wso2-basePath: /secured
x-wso2-endpoints:
  - securedBackend: {urls: ['http://127.0.0.1:1']}
x-wso2-production-endpoints: '#/x-wso2-endpoints/securedBackend'
paths:
  /orders: {get: {}}
",
    ),
];

struct Project {
    _dir: tempfile::TempDir,
    binary: std::path::PathBuf,
}

fn project() -> &'static Project {
    static PROJECT: OnceLock<Project> = OnceLock::new();
    PROJECT.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let binary = harness::build_project(dir.path(), "metrics", DEFINITIONS);
        Project { _dir: dir, binary }
    })
}

/// The metrics listener's address, from the start-up log line.
fn metrics_addr(gateway: &GatewayProcess) -> SocketAddr {
    let line = gateway
        .wait_for_log(
            "metrics listener is active on http://",
            Duration::from_secs(5),
        )
        .expect("the metrics listener's log line");
    let rest = line
        .split("metrics listener is active on http://")
        .nth(1)
        .expect("an address");
    rest.trim()
        .trim_end_matches("/metrics")
        .parse()
        .expect("a socket address")
}

/// The scraped text, checked for its content type.
async fn scrape(addr: SocketAddr) -> String {
    let reply = client::get(&format!("http://{addr}/metrics")).await;
    assert_eq!(reply.status, 200);
    assert!(
        reply
            .header("content-type")
            .is_some_and(|t| t.starts_with("application/openmetrics-text")),
        "{:?}",
        reply.headers
    );
    String::from_utf8(reply.body.to_vec()).expect("UTF-8")
}

/// The value of the series line `series` (exact name and labels), if present.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[tokio::test(flavor = "multi_thread")]
pub(crate) async fn requests_errors_and_auth_are_counted_by_route() {
    let be = backend::spawn("b", SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("a backend");
    let refused = harness::closed_port();
    let gw = GatewayProcess::start(
        &project().binary,
        &[
            format!("--openBackend_prod_endpoint_0={}", be.url()),
            format!("--securedBackend_prod_endpoint_0=http://127.0.0.1:{refused}"),
        ],
        false,
    );
    let base = format!("http://{}", gw.http);
    for id in ["1", "2", "secret-token-value"] {
        assert_eq!(
            client::get(&format!("{base}/open/items/{id}?q={id}"))
                .await
                .status,
            200
        );
    }
    assert_eq!(
        client::get(&format!("{base}/nowhere/at/all")).await.status,
        404
    );
    assert_eq!(
        client::get(&format!("{base}/secured/orders")).await.status,
        401
    );
    // A request with a token that is not a JWT: refused too, and the token is not a label.
    let reply = client::send(
        client::Protocol::Http1,
        http::Method::GET,
        &format!("{base}/secured/orders"),
        &[("authorization", "Bearer not-a-jwt")],
        client::empty(),
        Duration::from_secs(5),
    )
    .await
    .expect("an answer");
    assert_eq!(reply.status, 401);
    // A request target over `limits.max_uri_bytes`: the client's own error, before routing.
    let huge = format!(
        "GET /open/items/{} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
        "a".repeat(9000)
    );
    let answer = raw::exchange(
        gw.http,
        &[huge.as_bytes()],
        Duration::ZERO,
        Duration::from_secs(5),
    )
    .await;
    assert!(answer.text.starts_with("HTTP/1.1 414"), "{}", answer.text);

    let text = scrape(metrics_addr(&gw)).await;
    let open = r#"api="Open",template="/open/items/{id}""#;
    assert_eq!(
        value(
            &text,
            &format!(r#"mgw_requests_total{{{open},method="GET",class="2xx"}}"#)
        ),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            &format!("mgw_upstream_duration_seconds_count{{{open}}}")
        ),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            r#"mgw_requests_total{api="",template="(unrouted)",method="GET",class="4xx"}"#
        ),
        // The 404 and the 414.
        Some(2.0),
        "{text}"
    );
    let secured = r#"api="Secured",template="/secured/orders""#;
    assert_eq!(
        value(
            &text,
            &format!(r#"mgw_requests_total{{{secured},method="GET",class="4xx"}}"#)
        ),
        Some(2.0),
        "{text}"
    );
    // Counted under the resource's scheme (`any` when it accepts several).
    let refusals: f64 = text
        .lines()
        .filter(|l| l.starts_with("mgw_auth_total{") && l.contains(r#"outcome="failure""#))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(refusals, 2.0, "{text}");
    assert_eq!(
        value(&text, r#"mgw_client_errors_total{status="414"}"#),
        Some(1.0),
        "{text}"
    );
    assert!(value(&text, "mgw_requests_in_flight").is_some(), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("mgw_build_info{") && l.contains(r#"project="metrics""#)),
        "{text}"
    );
    assert!(
        text.lines().any(|l| l.starts_with(
            r#"mgw_connections_open{listener="listener.http",tls="false",protocol="auto"}"#
        )),
        "{text}"
    );
    // Raw paths, queries and credentials never become labels.
    for leaked in ["secret-token-value", "not-a-jwt", "nowhere", "q="] {
        assert!(!text.contains(leaked), "{leaked} in\n{text}");
    }
    assert!(text.ends_with("# EOF\n"), "{text}");
    drop(gw);

    // An endpoint that refuses the connection: a 502, counted by kind.
    let gw = GatewayProcess::start(
        &project().binary,
        &[format!(
            "--openBackend_prod_endpoint_0=http://127.0.0.1:{refused}"
        )],
        false,
    );
    assert_eq!(
        client::get(&format!("http://{}/open/items/9", gw.http))
            .await
            .status,
        502
    );
    let text = scrape(metrics_addr(&gw)).await;
    assert_eq!(
        value(
            &text,
            &format!(r#"mgw_upstream_errors_total{{{open},kind="refused"}}"#)
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            &format!(r#"mgw_requests_total{{{open},method="GET",class="5xx"}}"#)
        ),
        Some(1.0),
        "{text}"
    );
    // Anything but /metrics on the metrics listener is a 404.
    let other = client::get(&format!("http://{}/", metrics_addr(&gw))).await;
    assert_eq!(other.status, 404);
}

/// A gateway whose requests all run on one thread (the default runtime with one worker, and
/// the thread-per-core runtime's one worker) counts them in cells only that thread writes,
/// with plain loads and stores instead of atomic additions (`server::worker::add_relaxed`):
/// many requests at once are still every one counted, and none is left in flight.
#[tokio::test(flavor = "multi_thread")]
async fn one_worker_counts_every_one_of_many_concurrent_requests() {
    let be = backend::spawn("b", SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("a backend");
    for runtime in [
        &["--listener.worker_threads=1"][..],
        &[
            "--listener.runtime=thread-per-core",
            "--listener.worker_threads=1",
        ][..],
    ] {
        let mut args: Vec<String> = runtime.iter().map(|a| a.to_string()).collect();
        args.push(format!("--openBackend_prod_endpoint_0={}", be.url()));
        let gw = GatewayProcess::start(&project().binary, &args, false);
        let base = format!("http://{}", gw.http);
        let tasks: Vec<_> = (0..8)
            .map(|task| {
                let base = base.clone();
                tokio::spawn(async move {
                    for i in 0..50 {
                        let reply = client::get(&format!("{base}/open/items/{task}-{i}")).await;
                        assert_eq!(reply.status, 200);
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("a client task");
        }
        let text = scrape(metrics_addr(&gw)).await;
        let open = r#"api="Open",template="/open/items/{id}""#;
        for series in [
            format!(r#"mgw_requests_total{{{open},method="GET",class="2xx"}}"#),
            format!("mgw_request_duration_seconds_count{{{open}}}"),
            format!("mgw_upstream_duration_seconds_count{{{open}}}"),
        ] {
            assert_eq!(
                value(&text, &series),
                Some(400.0),
                "{runtime:?}: {series}\n{text}"
            );
        }
        assert_eq!(
            value(&text, "mgw_requests_in_flight"),
            Some(0.0),
            "{runtime:?}\n{text}"
        );
    }
}

/// 10,000 distinct paths (and odd methods) add no series: counted under the unrouted route.
#[tokio::test(flavor = "multi_thread")]
async fn ten_thousand_distinct_paths_keep_the_series_bounded() {
    let gw = GatewayProcess::start(&project().binary, &[], false);
    let addr = metrics_addr(&gw);
    // Warm every label set the flood below can touch.
    let batch = |from: usize, count: usize| {
        let mut bytes = Vec::new();
        for i in from..from + count {
            let method = match i % 4 {
                0 => "GET".to_string(),
                1 => "POST".to_string(),
                2 => format!("BREW{}", i % 97),
                _ => "DELETE".to_string(),
            };
            let last = i + 1 == from + count;
            bytes.extend_from_slice(
                format!(
                    "{method} /p{i}/{}?x={i} HTTP/1.1\r\nhost: h{i}.example\r\ncontent-length: 0\r\n{}\r\n",
                    i * 7,
                    if last { "connection: close\r\n" } else { "" }
                )
                .as_bytes(),
            );
        }
        bytes
    };
    let send = |bytes: Vec<u8>| async move {
        let reply =
            raw::exchange(gw.http, &[&bytes], Duration::ZERO, Duration::from_secs(30)).await;
        assert!(reply.closed, "the gateway did not answer the whole batch");
        reply.statuses()
    };
    let statuses = send(batch(0, 8)).await;
    assert_eq!(statuses.len(), 8);
    let before = scrape(addr).await;
    let mut answered = 0;
    for start in (0..10_000).step_by(500) {
        let statuses = send(batch(start, 500)).await;
        assert!(
            statuses.iter().all(|s| *s == 404 || *s == 405),
            "{statuses:?}"
        );
        answered += statuses.len();
    }
    assert_eq!(answered, 10_000);
    let after = scrape(addr).await;
    assert_eq!(
        before.lines().count(),
        after.lines().count(),
        "the series grew:\nbefore\n{before}\nafter\n{after}"
    );
    for leaked in ["/p9999", "h9999", "BREW"] {
        assert!(!after.contains(leaked), "{leaked} in\n{after}");
    }
}

/// `[metrics] enabled = false`: no metrics listener.
#[tokio::test(flavor = "multi_thread")]
async fn disabled_metrics_open_no_listener() {
    let port = harness::free_port();
    let gw = GatewayProcess::start(
        &project().binary,
        &[
            "--metrics.enabled=false".to_string(),
            format!("--metrics.port={port}"),
        ],
        false,
    );
    assert_eq!(
        client::get(&format!("http://{}/open/items/1", gw.http))
            .await
            .status,
        502
    );
    assert!(!gw.logs().iter().any(|l| l.contains("metrics listener")));
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
}
