//! Real WSO2 definitions (`tests/fixtures/wso2-openapi`) that use only endpoint features
//! build into one gateway, and every one of their resources routes to a backend.

use std::net::SocketAddr;
use std::time::Duration;

use http::{Method, StatusCode};
use mgw_e2e::backend;
use mgw_e2e::client::{self, Protocol};
use mgw_e2e::harness::{self, GatewayProcess};
use mgw_e2e::tokens;

const ENDPOINT_FIXTURES: [&str; 7] = [
    "endpoints_advance_config.yaml",
    "endpoints_endpoint_override.yaml",
    "endpoints_endpoint_security.yaml",
    "endpoints_endpoints_by_reference.yaml",
    "endpoints_fail_over.yaml",
    "endpoints_load_balance.yaml",
    "endpoints_resource_endpoints_only.yaml",
];

#[tokio::test(flavor = "multi_thread")]
async fn endpoint_fixtures_build_and_every_resource_routes() {
    let dir = tempfile::tempdir().unwrap();
    let sources = harness::fixtures_dir().join("wso2-openapi");
    let texts: Vec<(String, String)> =
        ENDPOINT_FIXTURES
            .iter()
            .map(|name| {
                (
                    name.to_string(),
                    without_tiers(&std::fs::read_to_string(sources.join(name)).unwrap_or_else(
                        |err| panic!("fixture {}: {err}", sources.join(name).display()),
                    )),
                )
            })
            .collect();
    let definitions: Vec<(&str, &str)> = texts
        .iter()
        .map(|(n, t)| (n.as_str(), t.as_str()))
        .collect();
    let binary = harness::build_project(dir.path(), "fixtures", &definitions);

    // Point every production endpoint URL at one real backend, by the names WSO2 users use.
    let be = backend::spawn("fixture-backend", SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let model: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("fixtures/target/gen/model.json")).unwrap(),
    )
    .unwrap();
    let mut overrides = std::collections::BTreeSet::new();
    for endpoint in model["endpoints"].as_array().unwrap() {
        let infix = if endpoint["environment"] == "production" {
            "prod"
        } else {
            "sand"
        };
        for i in 0..endpoint["urls"].as_array().unwrap().len() {
            overrides.insert(format!(
                "--{}_{infix}_endpoint_{i}={}",
                endpoint["name"].as_str().unwrap(),
                be.url()
            ));
        }
    }
    // Their resources require OAuth2 (WSO2's default): trust a test issuer and present a
    // token with every scope the definitions ask for.
    let conf = dir.path().join("fixtures/conf/micro-gw.toml");
    let mut settings = std::fs::read_to_string(&conf).unwrap();
    settings.push_str(&tokens::issuer_config());
    std::fs::write(&conf, settings).unwrap();
    let mut scopes: Vec<String> = model["apis"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|api| api["resources"].as_array().unwrap().iter())
        .flat_map(|r| {
            r["security"]["scopes"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|s| s.as_str().map(str::to_string))
        .collect();
    scopes.sort();
    scopes.dedup();
    let authorization = format!("Bearer {}", tokens::token(&scopes.join(" "), 600));
    let gw = GatewayProcess::start_with_env(
        &binary,
        &overrides.into_iter().collect::<Vec<_>>(),
        true,
        &[(tokens::SECRET_ENV, tokens::SECRET)],
    );

    let mut routed = 0;
    let mut refused = 0;
    for api in model["apis"].as_array().unwrap() {
        let base = api["base_path"].as_str().unwrap().trim_end_matches('/');
        for resource in api["resources"].as_array().unwrap() {
            if resource.get("production").is_none() {
                continue; // sandbox-only resources need a sandbox key (security lands later)
            }
            let path: String = resource["path"]
                .as_str()
                .unwrap()
                .split('/')
                .map(|s| {
                    if s.starts_with('{') {
                        "1"
                    } else if s == "*" {
                        "any/thing"
                    } else {
                        s
                    }
                })
                .collect::<Vec<_>>()
                .join("/");
            let method =
                Method::from_bytes(resource["method"].as_str().unwrap().as_bytes()).unwrap();
            let url = format!("http://{}{base}{path}", gw.http);
            let security = &resource["security"];
            let oauth2 = security.is_null()
                || security["schemes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|s| s["type"] == "oauth2");
            let headers: Vec<(&str, &str)> = if security.is_null() {
                vec![]
            } else {
                vec![("authorization", authorization.as_str())]
            };
            let reply = client::send(
                Protocol::Http1,
                method.clone(),
                &url,
                &headers,
                client::empty(),
                Duration::from_secs(10),
            )
            .await
            .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
            if !oauth2 {
                // Only schemes this version does not support yet: refused, never forwarded.
                assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{method} {url}");
                refused += 1;
                continue;
            }
            assert_eq!(
                reply.status,
                StatusCode::OK,
                "{method} {url}: {}",
                String::from_utf8_lossy(&reply.body)
            );
            if method != Method::HEAD {
                assert_eq!(
                    reply.header("x-backend"),
                    Some("fixture-backend"),
                    "{method} {url}"
                );
            }
            routed += 1;
        }
    }
    assert!(routed >= 40, "only {routed} resources were routed");
    assert_eq!(be.request_count(), routed);
    assert!(refused < routed, "{refused} refused");
}

/// The fixtures' throttling tiers set to `Unlimited`: this test is about endpoints, and WSO2's
/// own suite names `NonExistingPolicy` (a build error here; see `throttling.rs`) and tiers of
/// 3 and 15 requests a minute that routing every resource would exceed.
fn without_tiers(text: &str) -> String {
    text.lines()
        .map(|line| {
            let trimmed = line.trim_start();
            if trimmed.starts_with("x-wso2-throttling-tier:")
                || trimmed.starts_with("x-throttling-tier:")
            {
                let indent = &line[..line.len() - trimmed.len()];
                let key = trimmed.split(':').next().unwrap_or_default();
                format!("{indent}{key}: Unlimited")
            } else {
                line.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}
