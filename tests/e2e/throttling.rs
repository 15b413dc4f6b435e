//! WSO2 throttling tiers end to end: a project's own `policies.yaml`, API, resource,
//! subscription, application and `Unauthenticated` tiers, WSO2's fault codes, `Retry-After`
//! and the IETF `RateLimit` headers, `stopOnQuotaReach: false`, an unknown runtime tier (900809),
//! and the build error for an unknown `x-wso2-throttling-tier`.

use std::net::SocketAddr;
use std::time::Duration;

use http::{Method, StatusCode};
use mgw_e2e::backend;
use mgw_e2e::client::{self, Protocol};
use mgw_e2e::harness::{self, GatewayProcess};
use mgw_e2e::tokens;

const POLICIES: &str = "resourcePolicies:
  - 2PerMin: {count: 2, unitTime: 1, timeUnit: min}
  - 3PerMin: {count: 3, unitTime: 1, timeUnit: min}
applicationPolicies:
  - App2: {count: 2, unitTime: 1, timeUnit: min}
subscriptionPolicies:
  - Sub2: {count: 2, unitTime: 1, timeUnit: min, stopOnQuotaReach: true}
  - SubSoft: {count: 1, unitTime: 1, timeUnit: min, stopOnQuotaReach: false}
  - Unauthenticated: {count: 2, unitTime: 1, timeUnit: min}
";

const API_TIER: &str = "openapi: 3.0.0
info: {title: ApiTier, version: '1'}
x-wso2-basePath: /api
x-wso2-throttling-tier: 3PerMin
x-wso2-endpoints:
  - apiBackend: {urls: ['http://127.0.0.1:1']}
x-wso2-production-endpoints: '#/x-wso2-endpoints/apiBackend'
paths:
  /a: {get: {}}
  /b: {get: {}}
";

const RESOURCE_TIER: &str = "openapi: 3.0.0
info: {title: Res, version: '1'}
x-wso2-basePath: /res
x-wso2-endpoints:
  - resBackend: {urls: ['http://127.0.0.1:1']}
x-wso2-production-endpoints: '#/x-wso2-endpoints/resBackend'
paths:
  /x: {get: {x-throttling-tier: 2PerMin}}
  /y: {get: {}}
";

const OPEN: &str = "openapi: 3.0.0
info: {title: Open, version: '1'}
x-wso2-basePath: /open
x-wso2-disable-security: true
x-wso2-endpoints:
  - openBackend: {urls: ['http://127.0.0.1:1']}
x-wso2-production-endpoints: '#/x-wso2-endpoints/openBackend'
paths:
  /z: {get: {}}
";

fn jwt(extra: serde_json::Value) -> String {
    let mut claims =
        serde_json::json!({"iss": tokens::ISSUER, "sub": "user", "exp": tokens::now() + 300});
    if let (Some(c), Some(e)) = (claims.as_object_mut(), extra.as_object()) {
        c.extend(e.clone());
    }
    format!("Bearer {}", tokens::hs256(&claims, tokens::SECRET))
}

async fn get(gw: &GatewayProcess, path: &str, auth: Option<&str>) -> client::Reply {
    let headers: Vec<(&str, &str)> = auth.map(|a| ("authorization", a)).into_iter().collect();
    client::send(
        Protocol::Http1,
        Method::GET,
        &format!("http://{}{path}", gw.http),
        &headers,
        client::empty(),
        Duration::from_secs(10),
    )
    .await
    .unwrap()
}

/// Sends `ok` requests that must pass, then one that must be refused with `code`.
async fn quota(gw: &GatewayProcess, paths: &[&str], auth: Option<&str>, ok: usize, code: u64) {
    for i in 0..ok {
        let path = paths[i % paths.len()];
        let reply = get(gw, path, auth).await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "{path} #{i}: {:?}",
            reply.body
        );
        assert!(
            reply.header("ratelimit").is_some(),
            "{path}: {:?}",
            reply.headers
        );
    }
    let reply = get(gw, paths[0], auth).await;
    assert_eq!(
        reply.status,
        StatusCode::TOO_MANY_REQUESTS,
        "{:?}",
        reply.body
    );
    let fault = &reply.json()["fault"];
    assert_eq!(fault["code"], code, "{fault}");
    assert_eq!(fault["message"], "Message throttled out");
    assert_eq!(fault["description"], "You have exceeded your quota");
    let retry: u64 = reply.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert!(
        reply.header("ratelimit").unwrap().contains(";r=0;t="),
        "{:?}",
        reply.headers
    );
    assert!(reply.header("ratelimit-policy").unwrap().ends_with(";w=60"));
}

#[tokio::test(flavor = "multi_thread")]
async fn every_tier_kind_refuses_with_its_wso2_fault() {
    let dir = tempfile::tempdir().unwrap();
    let init = harness::micro_gw(dir.path(), &["init", "tiers"]);
    assert!(init.status.success(), "{}", harness::text(&init));
    let project = dir.path().join("tiers");
    std::fs::write(project.join("policies.yaml"), POLICIES).unwrap();
    for (name, text) in [
        ("api.yaml", API_TIER),
        ("res.yaml", RESOURCE_TIER),
        ("open.yaml", OPEN),
    ] {
        harness::write_file(&project.join("api_definitions"), name, text);
    }
    let build = harness::micro_gw(dir.path(), &["build", "tiers"]);
    assert!(build.status.success(), "{}", harness::text(&build));
    let conf = project.join("conf/micro-gw.toml");
    let mut settings = std::fs::read_to_string(&conf).unwrap();
    settings.push_str(&tokens::issuer_config());
    std::fs::write(&conf, settings).unwrap();
    let be = backend::spawn("tiers", SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let mut args = Vec::new();
    for name in ["apiBackend", "resBackend", "openBackend"] {
        args.push(format!("--{name}_prod_endpoint_0={}", be.url()));
    }
    let gw = GatewayProcess::start_with_env(
        &project.join("target/tiers"),
        &args,
        false,
        &[(tokens::SECRET_ENV, tokens::SECRET)],
    );
    let plain = jwt(serde_json::json!({}));

    // API tier: one counter for the API's resources, 900800.
    quota(&gw, &["/api/a", "/api/b"], Some(&plain), 3, 900800).await;
    // Resource tier (x-throttling-tier): 900802; the API's other resource is not counted.
    quota(&gw, &["/res/x"], Some(&plain), 2, 900802).await;
    assert_eq!(
        get(&gw, "/res/y", Some(&plain)).await.status,
        StatusCode::OK
    );
    // Unsecured resources count against Unauthenticated per client: 900804.
    quota(&gw, &["/open/z"], None, 2, 900804).await;
    // The token's subscription tier for this API: 900804.
    let sub = jwt(serde_json::json!({"application": {"id": "a1"},
        "subscribedAPIs": [{"name": "Res", "version": "1", "subscriptionTier": "Sub2"}]}));
    quota(&gw, &["/res/y"], Some(&sub), 2, 900804).await;
    // The token's application tier: 900803.
    let app = jwt(serde_json::json!({"application": {"id": "a2", "tier": "App2"}}));
    quota(&gw, &["/res/y"], Some(&app), 2, 900803).await;
    // stopOnQuotaReach: false counts but lets requests through.
    let soft = jwt(serde_json::json!({"application": {"id": "a3"},
        "subscribedAPIs": [{"name": "Res", "version": "1", "subscriptionTier": "SubSoft"}]}));
    for _ in 0..3 {
        assert_eq!(get(&gw, "/res/y", Some(&soft)).await.status, StatusCode::OK);
    }
    // A tier policies.yaml does not define: WSO2's 500 with 900809.
    let unknown = jwt(serde_json::json!({"application": {"id": "a4", "tier": "Nope"}}));
    let reply = get(&gw, "/res/y", Some(&unknown)).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(reply.json()["fault"]["code"], 900809);
}

#[test]
fn an_unknown_tier_fails_the_build_naming_file_api_and_tier() {
    let dir = tempfile::tempdir().unwrap();
    let init = harness::micro_gw(dir.path(), &["init", "bad"]);
    assert!(init.status.success(), "{}", harness::text(&init));
    let definition = RESOURCE_TIER.replace("2PerMin", "NonExistingPolicy");
    harness::write_file(
        &dir.path().join("bad/api_definitions"),
        "res.yaml",
        &definition,
    );
    let build = harness::micro_gw(dir.path(), &["build", "bad"]);
    let out = harness::text(&build);
    assert!(!build.status.success(), "{out}");
    assert!(
        out.contains("res.yaml:8")
            && out.contains("API 'Res'")
            && out.contains("'NonExistingPolicy'")
            && out.contains("policies.yaml"),
        "{out}"
    );
}

/// Two replicas on one Redis share a resource tier: 100 concurrent requests through both admit
/// exactly the tier's 20 (one fixed window, one atomic script per decision).
#[tokio::test(flavor = "multi_thread")]
async fn two_replicas_on_one_redis_admit_the_tier_once() {
    let Some(redis) = super::redis_replicas::RedisServer::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let init = harness::micro_gw(dir.path(), &["init", "shared"]);
    assert!(init.status.success(), "{}", harness::text(&init));
    let project = dir.path().join("shared");
    std::fs::write(
        project.join("policies.yaml"),
        "resourcePolicies:\n  - 20PerMin: {count: 20, unitTime: 1, timeUnit: min}\n",
    )
    .unwrap();
    let definition = OPEN.replace("paths:", "x-wso2-throttling-tier: 20PerMin\npaths:");
    harness::write_file(&project.join("api_definitions"), "open.yaml", &definition);
    harness::name_redis_in_conf(&project);
    let build = harness::micro_gw(dir.path(), &["build", "shared", harness::ALL_PARTS]);
    assert!(build.status.success(), "{}", harness::text(&build));
    let be = backend::spawn("shared", SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let args = vec![
        format!("--openBackend_prod_endpoint_0={}", be.url()),
        format!("--store.redis={}", redis.url()),
        "--rate_limit.replicas=2".into(),
        "--rate_limit.timeout_ms=2000".into(),
    ];
    let binary = project.join("target/shared");
    let replicas = [
        GatewayProcess::start(&binary, &args, false),
        GatewayProcess::start(&binary, &args, false),
    ];
    let urls: Vec<String> = replicas
        .iter()
        .map(|g| format!("http://{}/open/z", g.http))
        .collect();
    let mut tasks = Vec::new();
    for c in 0..10 {
        let urls = urls.clone();
        tasks.push(tokio::spawn(async move {
            let (mut ok, mut refused) = (0, 0);
            for i in (c..100).step_by(10) {
                let reply = client::get(&urls[i % 2]).await;
                match reply.status.as_u16() {
                    200 => ok += 1,
                    429 => {
                        assert_eq!(reply.json()["fault"]["code"], 900800);
                        refused += 1
                    }
                    other => panic!("{other}: {:?}", reply.body),
                }
            }
            (ok, refused)
        }));
    }
    let (mut ok, mut refused) = (0, 0);
    for t in tasks {
        let (o, r) = t.await.unwrap();
        ok += o;
        refused += r;
    }
    eprintln!(
        "throttling, 2 replicas on one Redis, 100 requests: {ok} admitted, {refused} refused"
    );
    assert_eq!((ok, refused), (20, 80));
}
