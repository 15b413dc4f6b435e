//! `x-wso2-cors` through a built gateway (issue 12 item 4): the preflight is answered by the
//! gateway before authentication, also on a path that declares no OPTIONS operation; an allowed
//! origin gets the CORS headers on real answers (a 401 included); a disallowed one gets none.

use std::net::SocketAddr;
use std::time::Duration;

use http::{Method, StatusCode};
use mgw_e2e::backend;
use mgw_e2e::client::{self, Protocol, Reply};
use mgw_e2e::harness::{self, GatewayProcess};

const DEFINITION: &str = "openapi: 3.0.0
info: {title: Shop, version: '1'}
x-wso2-basePath: /shop
x-wso2-cors:
  corsConfigurationEnabled: true
  accessControlAllowOrigins: ['https://app.example']
  accessControlAllowCredentials: true
  accessControlAllowHeaders: [authorization, content-type]
  accessControlAllowMethods: [GET, POST]
x-wso2-endpoints:
  - shopBackend: {urls: ['http://127.0.0.1:1']}
x-wso2-production-endpoints: '#/x-wso2-endpoints/shopBackend'
paths:
  /items: {get: {}}
  /open: {get: {x-wso2-disable-security: true}}
";

async fn send(gw: &GatewayProcess, method: Method, path: &str, headers: &[(&str, &str)]) -> Reply {
    client::send(
        Protocol::Http1,
        method,
        &format!("http://{}{path}", gw.http),
        headers,
        client::empty(),
        Duration::from_secs(10),
    )
    .await
    .unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn preflights_are_answered_before_authentication_and_origins_are_checked() {
    let be = backend::spawn("cors", SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let binary = harness::build_project(dir.path(), "cors", &[("shop.yaml", DEFINITION)]);
    let gw = GatewayProcess::start(
        &binary,
        &[format!("--shopBackend_prod_endpoint_0={}", be.url())],
        false,
    );
    let allowed = "https://app.example";

    // A preflight to a secured path with only GET declared: answered, no credentials asked.
    let reply = send(
        &gw,
        Method::OPTIONS,
        "/shop/items",
        &[
            ("Origin", allowed),
            ("Access-Control-Request-Method", "GET"),
            ("Access-Control-Request-Headers", "authorization"),
        ],
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.headers);
    assert_eq!(reply.header("access-control-allow-origin"), Some(allowed));
    assert_eq!(
        reply.header("access-control-allow-credentials"),
        Some("true")
    );
    assert!(reply.header("access-control-allow-methods").is_some());
    assert_eq!(
        be.request_count(),
        0,
        "a preflight never reaches the upstream"
    );

    // The 401 of a request without credentials still carries the CORS headers.
    let reply = send(&gw, Method::GET, "/shop/items", &[("Origin", allowed)]).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.header("access-control-allow-origin"), Some(allowed));

    // A proxied answer gets them too; a disallowed origin gets none, never a wildcard.
    let reply = send(&gw, Method::GET, "/shop/open", &[("Origin", allowed)]).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.header("access-control-allow-origin"), Some(allowed));
    let reply = send(
        &gw,
        Method::GET,
        "/shop/open",
        &[("Origin", "https://evil.example")],
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.header("access-control-allow-origin").is_none());
    assert!(reply.header("access-control-allow-credentials").is_none());
    let reply = send(
        &gw,
        Method::OPTIONS,
        "/shop/items",
        &[
            ("Origin", "https://evil.example"),
            ("Access-Control-Request-Method", "GET"),
        ],
    )
    .await;
    assert!(reply.header("access-control-allow-origin").is_none());

    // Without CORS asked for, OPTIONS on a path without that operation stays a 405.
    let reply = send(&gw, Method::OPTIONS, "/shop/items", &[]).await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
}
