//! Path templates and base paths as real definitions write them (issue 10 items 1–4): the
//! bytes a client sends, the status it gets, and the path the upstream sees.

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;

use http::{Method, StatusCode};
use mgw_e2e::backend::{self, Backend};
use mgw_e2e::client::{self, Protocol};
use mgw_e2e::harness::{self, GatewayProcess};
use mgw_e2e::raw;

/// One definition per item; every endpoint is a named one, pointed at the test's backend.
const DEFINITIONS: &[(&str, &str)] = &[
    (
        "ctx.yaml",
        "openapi: 3.0.0
info: {title: Ctx, version: '1'}
x-wso2-basePath: /ctx
x-wso2-disable-security: true
x-wso2-endpoints:
  - ctxBackend: {urls: ['http://127.0.0.1:1/up']}
x-wso2-production-endpoints: '#/x-wso2-endpoints/ctxBackend'
paths:
  /*: {get: {}}
",
    ),
    (
        "bank.yaml",
        "openapi: 3.0.0
info: {title: Bank, version: '1.0'}
x-wso2-basePath: /bank/payments/{version}
x-wso2-disable-security: true
x-wso2-endpoints:
  - bankBackend: {urls: ['http://127.0.0.1:1']}
x-wso2-production-endpoints: '#/x-wso2-endpoints/bankBackend'
paths:
  /accounts/{id}: {get: {}}
",
    ),
    (
        "geo.yaml",
        "openapi: 3.0.0
info: {title: Geo, version: '1'}
x-wso2-basePath: /geo
x-wso2-disable-security: true
x-wso2-endpoints:
  - geoBackend: {urls: ['http://127.0.0.1:1']}
x-wso2-production-endpoints: '#/x-wso2-endpoints/geoBackend'
paths:
  /städte/{name}: {get: {}}
",
    ),
    (
        "multi.yaml",
        "openapi: 3.0.0
info: {title: Multi, version: '1'}
x-wso2-basePath: /m
x-wso2-disable-security: true
x-wso2-endpoints:
  - multiBackend: {urls: ['http://127.0.0.1:1']}
x-wso2-production-endpoints: '#/x-wso2-endpoints/multiBackend'
paths:
  /profiles/{id}{ext}: {get: {}}
  /search/{category}.{ext}: {get: {}}
  /search/{category}.json:
    get:
      operationId: searchJson
      x-wso2-production-endpoints: {urls: ['http://127.0.0.1:1/json']}
  /certificates(alg={alg},thumbprint={tp}): {get: {}}
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
        let binary = harness::build_project(dir.path(), "templates", DEFINITIONS);
        Project { _dir: dir, binary }
    })
}

async fn backend() -> Backend {
    backend::spawn("b", SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("starting a backend")
}

/// The gateway with every named endpoint pointed at `be` (the ctx one with its `/up` path).
fn gateway(be: &Backend) -> GatewayProcess {
    let mut args = vec![format!("--ctxBackend_prod_endpoint_0={}/up", be.url())];
    for name in ["bankBackend", "geoBackend", "multiBackend"] {
        args.push(format!("--{name}_prod_endpoint_0={}", be.url()));
    }
    args.push(format!("--searchJson_prod_endpoint_0={}/json", be.url()));
    GatewayProcess::start(&project().binary, &args, false)
}

/// Status and, on 200, the path the upstream saw.
async fn get(gw: &GatewayProcess, target: &str) -> (StatusCode, Option<String>) {
    let reply = client::send(
        Protocol::Http1,
        Method::GET,
        &format!("http://{}{target}", gw.http),
        &[],
        client::empty(),
        Duration::from_secs(10),
    )
    .await
    .unwrap_or_else(|err| panic!("GET {target}: {err}"));
    let path = (reply.status == StatusCode::OK)
        .then(|| reply.json()["path"].as_str().map(str::to_string))
        .flatten();
    (reply.status, path)
}

/// Item 1: `/*` under `/ctx` is also `/ctx` and `/ctx/`; the upstream gets the endpoint's path
/// with and without the slash.
#[tokio::test(flavor = "multi_thread")]
async fn catch_all_covers_the_api_root() {
    let be = backend().await;
    let gw = gateway(&be);
    for (target, upstream) in [
        ("/ctx", "/up"),
        ("/ctx/", "/up/"),
        ("/ctx/a/b", "/up/a/b"),
        ("/ctx?x=1", "/up"),
    ] {
        assert_eq!(
            get(&gw, target).await,
            (StatusCode::OK, Some(upstream.to_string())),
            "{target}"
        );
    }
    assert_eq!(get(&gw, "/ctxx").await.0, StatusCode::NOT_FOUND);
}

/// Item 2: `{version}` in a base path is info.version, and paths shorter than the base path
/// answer (404) instead of resetting the connection.
#[tokio::test(flavor = "multi_thread")]
async fn templated_base_path_is_the_version_and_short_paths_answer() {
    let be = backend().await;
    let gw = gateway(&be);
    assert_eq!(
        get(&gw, "/bank/payments/1.0/accounts/7").await,
        (StatusCode::OK, Some("/accounts/7".into()))
    );
    for short in [
        "/bank",
        "/bank/payments",
        "/bank/payments/1.0",
        "/bank/x/y/z",
    ] {
        assert_eq!(get(&gw, short).await.0, StatusCode::NOT_FOUND, "{short}");
    }
    assert_eq!(
        get(&gw, "/bank/payments/%7Bversion%7D/accounts/7").await.0,
        StatusCode::NOT_FOUND
    );
    // Raw bytes, one connection: every request answered, the connection kept.
    let request = |path: &str| format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").into_bytes();
    let (a, b, c) = (
        request("/bank"),
        request("/bank/p"),
        request("/bank/payments/1.0/accounts/1"),
    );
    let reply = raw::exchange(
        gw.http,
        &[&a, &b, &c],
        Duration::from_millis(50),
        Duration::from_millis(1500),
    )
    .await;
    assert_eq!(reply.statuses(), [404, 404, 200], "{}", reply.text);
    assert!(!reply.closed, "{}", reply.text);
}

/// Item 3: a non-ASCII literal routes in its percent-encoded UTF-8 form, raw UTF-8 too, and
/// the upstream gets the encoded form.
#[tokio::test(flavor = "multi_thread")]
async fn non_ascii_literals_route_encoded_and_raw() {
    let be = backend().await;
    let gw = gateway(&be);
    let encoded = "/st%C3%A4dte/k%C3%B6ln";
    assert_eq!(
        get(&gw, "/geo/st%C3%A4dte/k%C3%B6ln").await,
        (StatusCode::OK, Some(encoded.into()))
    );
    assert_eq!(
        get(&gw, "/geo/st%c3%a4dte/k%c3%b6ln").await,
        (StatusCode::OK, Some(encoded.into()))
    );
    let raw_request = "GET /geo/städte/köln HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let reply = raw::exchange(
        gw.http,
        &[raw_request.as_bytes()],
        Duration::ZERO,
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(reply.statuses(), [200], "{}", reply.text);
    assert!(
        reply.text.contains(&format!("\"path\":\"{encoded}\"")),
        "{}",
        reply.text
    );
    assert_eq!(get(&gw, "/geo/stadte/x").await.0, StatusCode::NOT_FOUND);
}

/// Item 4: several parameters in one segment, split by literal separators.
#[tokio::test(flavor = "multi_thread")]
async fn several_parameters_in_one_segment() {
    let be = backend().await;
    let gw = gateway(&be);
    for (target, upstream) in [
        ("/m/profiles/7.xml", "/profiles/7.xml"),
        ("/m/search/books.csv", "/search/books.csv"),
        ("/m/search/books.json", "/json/search/books.json"),
        (
            "/m/certificates(alg=RS256,thumbprint=ab:cd)",
            "/certificates(alg=RS256,thumbprint=ab:cd)",
        ),
    ] {
        assert_eq!(
            get(&gw, target).await,
            (StatusCode::OK, Some(upstream.to_string())),
            "{target}"
        );
    }
    for missing in [
        "/m/search/books",
        "/m/search/.csv",
        "/m/certificates(alg=RS256)",
    ] {
        assert_eq!(
            get(&gw, missing).await.0,
            StatusCode::NOT_FOUND,
            "{missing}"
        );
    }
}
