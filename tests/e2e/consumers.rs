//! Express Gateway consumers end to end: the admin API (token, EG's paths and statuses) fills
//! the embedded store; `key-auth` and `basic-auth` steps admit its consumers with EG's answers
//! (401/403 text/plain, `eg-consumer-id`); what was acknowledged survives the gateway being
//! killed (SIGKILL) and started again. The expected behaviour is Express Gateway 1.16's, as
//! recorded in `tests/fixtures/eg-observed/kargo/observed.json` and described in
//! `docs/consumers.md` and `docs/express-gateway-differences.md`.

use std::time::{Duration, Instant};

use base64::Engine;
use http::Method;
use mgw_e2e::backend;
use mgw_e2e::client::{self, Protocol, Reply};
use mgw_e2e::harness::{self, GatewayProcess};
use mgw_e2e::tokens;
use serde_json::{json, Value};

const TOKEN: &str = "test-admin-token";

use mgw_e2e::harness::free_port;

async fn send(method: Method, url: &str, headers: &[(&str, &str)], body: Option<Value>) -> Reply {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut headers = headers.to_vec();
    if body.is_some() {
        headers.push(("content-type", "application/json"));
    }
    loop {
        let payload = match &body {
            Some(b) => client::full(b.to_string()),
            None => client::empty(),
        };
        match client::send(
            Protocol::Http1,
            method.clone(),
            url,
            &headers,
            payload,
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

fn json_body(reply: &Reply) -> Value {
    serde_json::from_slice(&reply.body)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&reply.body)))
}

/// Issue 13 items 1, 2 and 4: consumers made through the admin API authenticate with key-auth
/// and basic-auth, as EG answers; the store survives a kill -9.
#[tokio::test(flavor = "multi_thread")]
async fn admin_api_consumers_authenticate_and_survive_a_restart() {
    let be = backend::spawn_scripted(|_| (200, vec![], "ok".to_string()))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let init = harness::micro_gw(dir.path(), &["init", "shop"]);
    assert!(init.status.success(), "{}", harness::text(&init));
    let eg = harness::write_file(
        dir.path(),
        "gateway.config.yml",
        &format!(
            "http: {{port: 8080}}\nadmin: {{port: 9876, host: localhost}}\nserviceEndpoints: {{b: {{url: '{}'}}}}\npolicies: [proxy, key-auth, basic-auth]\napiEndpoints:\n  keys: {{path: '/keys/*'}}\n  scoped: {{path: '/scoped/*', scopes: [admin]}}\n  basic: {{path: '/basic/*'}}\npipelines:\n  keys:\n    apiEndpoints: [keys, scoped]\n    policies: [{{key-auth: }}, {{proxy: {{action: {{serviceEndpoint: b}}}}}}]\n  basic:\n    apiEndpoints: [basic]\n    policies: [{{basic-auth: }}, {{proxy: {{action: {{serviceEndpoint: b}}}}}}]\n",
            be.url()
        ),
    );
    let import = harness::micro_gw(
        dir.path(),
        &["import", "shop", "--express-gateway", eg.to_str().unwrap()],
    );
    assert!(import.status.success(), "{}", harness::text(&import));
    let build = harness::micro_gw(dir.path(), &["build", "shop"]);
    assert!(build.status.success(), "{}", harness::text(&build));
    let binary = dir.path().join("shop/target/shop");
    let (port, admin_port) = (free_port(), free_port());
    let args = [
        format!("--express_gateway.http_port={port}"),
        format!("--express_gateway.admin_port={admin_port}"),
    ];
    let env = [("MGW_ADMIN_TOKEN", TOKEN)];
    let gw = GatewayProcess::start_with_env(&binary, &args, false, &env);
    let admin = format!("http://127.0.0.1:{admin_port}");
    let api = format!("http://127.0.0.1:{port}");
    let bearer = format!("Bearer {TOKEN}");
    let auth: &[(&str, &str)] = &[("authorization", bearer.as_str())];

    // The admin API wants its token.
    let refused = send(Method::GET, &format!("{admin}/users"), &[], None).await;
    assert_eq!(refused.status, 401);
    let user = send(
        Method::POST,
        &format!("{admin}/users"),
        auth,
        Some(json!({"username": "ann", "firstname": "Ann", "lastname": "L"})),
    )
    .await;
    assert_eq!(user.status, 200, "{}", String::from_utf8_lossy(&user.body));
    let user = json_body(&user);
    let duplicate = send(
        Method::POST,
        &format!("{admin}/users"),
        auth,
        Some(json!({"username": "ann"})),
    )
    .await;
    assert_eq!(duplicate.status, 409);
    assert_eq!(&duplicate.body[..], b"username already exists");
    let scopes = send(
        Method::POST,
        &format!("{admin}/scopes"),
        auth,
        Some(json!({"scopes": ["admin"]})),
    )
    .await;
    assert_eq!(scopes.status, 201);
    let key = json_body(
        &send(
            Method::POST,
            &format!("{admin}/credentials"),
            auth,
            Some(json!({"consumerId": "ann", "type": "key-auth"})),
        )
        .await,
    );
    let api_key = format!(
        "apiKey {}:{}",
        key["keyId"].as_str().unwrap(),
        key["keySecret"].as_str().unwrap()
    );
    let basic = send(
        Method::POST,
        &format!("{admin}/credentials"),
        auth,
        Some(json!({"consumerId": "ann", "type": "basic-auth", "credential": {"password": "s3cret"}})),
    )
    .await;
    assert_eq!(
        basic.status,
        200,
        "{}",
        String::from_utf8_lossy(&basic.body)
    );

    // key-auth: accepted with eg-consumer-id upstream; a wrong key 401; no scope 403.
    let ok = send(
        Method::GET,
        &format!("{api}/keys/a"),
        &[("authorization", &api_key)],
        None,
    )
    .await;
    assert_eq!(ok.status, 200);
    assert_eq!(
        be.seen().last().unwrap().header("eg-consumer-id"),
        user["id"].as_str()
    );
    let query = send(
        Method::GET,
        &format!(
            "{api}/keys/a?apiKey={}:{}",
            key["keyId"].as_str().unwrap(),
            key["keySecret"].as_str().unwrap()
        ),
        &[],
        None,
    )
    .await;
    assert_eq!(query.status, 200);
    let wrong = send(
        Method::GET,
        &format!("{api}/keys/a"),
        &[("authorization", "apiKey nope:nope")],
        None,
    )
    .await;
    assert_eq!(wrong.status, 401);
    assert_eq!(&wrong.body[..], b"Unauthorized");
    assert_eq!(
        wrong.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    let scoped = send(
        Method::GET,
        &format!("{api}/scoped/a"),
        &[("authorization", &api_key)],
        None,
    )
    .await;
    assert_eq!(scoped.status, 403);
    assert_eq!(&scoped.body[..], b"Forbidden");

    // basic-auth by username and by id; a wrong password is 401.
    let b64 = |s: String| base64::engine::general_purpose::STANDARD.encode(s);
    for id in ["ann", user["id"].as_str().unwrap()] {
        let header = format!("Basic {}", b64(format!("{id}:s3cret")));
        let reply = send(
            Method::GET,
            &format!("{api}/basic/x"),
            &[("authorization", &header)],
            None,
        )
        .await;
        assert_eq!(reply.status, 200, "{id}");
    }
    let header = format!("Basic {}", b64("ann:wrong".into()));
    let reply = send(
        Method::GET,
        &format!("{api}/basic/x"),
        &[("authorization", &header)],
        None,
    )
    .await;
    assert_eq!(reply.status, 401);

    // Killed (SIGKILL) and started again: everything acknowledged is there.
    drop(gw);
    let gw = GatewayProcess::start_with_env(&binary, &args, false, &env);
    let again = send(
        Method::GET,
        &format!("{api}/keys/a"),
        &[("authorization", &api_key)],
        None,
    )
    .await;
    assert_eq!(again.status, 200);
    // Deactivating the credential takes effect at once.
    let path = format!(
        "{admin}/credentials/key-auth/{}/status",
        key["keyId"].as_str().unwrap()
    );
    let status = send(Method::PUT, &path, auth, Some(json!({"status": false}))).await;
    assert_eq!(json_body(&status), json!({"status": "Deactivated"}));
    let off = send(
        Method::GET,
        &format!("{api}/keys/a"),
        &[("authorization", &api_key)],
        None,
    )
    .await;
    assert_eq!(off.status, 401);
    drop(gw);
}

/// Issue 13 items 4–6: Kargo's configuration, unmodified, with its consumers made through the
/// admin API: a bearer jwt (`sub` = a jwt credential's keyId, `aud` = `${SUBDOMAIN}`, HMAC with
/// `${EXPRESS_GATEWAY_KEY_SECRET}`) and a query jwt reach the backend when the application holds
/// the endpoint's scope; the `scopes` step refuses another endpoint; anonymous requests get the
/// `WWW-Authenticate: Basic` 401; `/healthcheck` answers; the `eg` counter counts them.
#[tokio::test(flavor = "multi_thread")]
async fn kargo_serves_its_consumers_with_jwt_scopes_metrics_and_healthcheck() {
    let be = backend::spawn_scripted(|_| (200, vec![], "ok".to_string()))
        .await
        .unwrap();
    let text = std::fs::read_to_string(harness::fixtures_dir().join("kargo/gateway.config.yml"))
        .unwrap()
        .replace("http://mapserver:80", &be.url())
        .replace("http://mapcache:80", &be.url())
        .replace("http://k2:8080", &be.url())
        .replace("http://kapture:3000", &be.url());
    let dir = tempfile::tempdir().unwrap();
    let init = harness::micro_gw(dir.path(), &["init", "kargo"]);
    assert!(init.status.success(), "{}", harness::text(&init));
    let gateway = harness::write_file(dir.path(), "gateway.config.yml", &text);
    let system = harness::fixtures_dir().join("kargo/system.config.yml");
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
    assert!(import.status.success(), "{}", harness::text(&import));
    let build = harness::micro_gw(dir.path(), &["build", "kargo", harness::ALL_PARTS]);
    assert!(build.status.success(), "{}", harness::text(&build));
    let (port, admin_port) = (free_port(), free_port());
    let _gw = GatewayProcess::start_with_env(
        &dir.path().join("kargo/target/kargo"),
        &[
            format!("--express_gateway.http_port={port}"),
            format!("--express_gateway.admin_port={admin_port}"),
            // Kargo's db.redis (host `redis`) became [store] redis at import: the embedded
            // store here, as an operator without that Redis would run it.
            "--store.redis=".to_string(),
        ],
        false,
        &[
            ("MGW_ADMIN_TOKEN", TOKEN),
            ("EXPRESS_GATEWAY_KEY_SECRET", "kargo-secret"),
            ("SUBDOMAIN", "kargo.test"),
        ],
    );
    let admin = format!("http://127.0.0.1:{admin_port}");
    let api = format!("http://127.0.0.1:{port}");
    let bearer = format!("Bearer {TOKEN}");
    let auth: &[(&str, &str)] = &[("authorization", bearer.as_str())];

    assert_eq!(
        send(
            Method::POST,
            &format!("{admin}/users"),
            auth,
            Some(json!({"username": "kalisio"}))
        )
        .await
        .status,
        200
    );
    let app = json_body(
        &send(
            Method::POST,
            &format!("{admin}/apps"),
            auth,
            Some(json!({"userId": "kalisio", "name": "viewer", "scopes": ["wms", "wmts"]})),
        )
        .await,
    );
    let jwt = json_body(
        &send(
            Method::POST,
            &format!("{admin}/credentials"),
            auth,
            Some(json!({"consumerId": "viewer", "type": "jwt", "credential": {"keyId": "viewer-key"}})),
        )
        .await,
    );
    assert_eq!(jwt["keyId"], json!("viewer-key"));
    let token = tokens::hs256(
        &json!({"sub": "viewer-key", "aud": "kargo.test", "exp": 4_000_000_000u64}),
        "kargo-secret",
    );
    let bearer_jwt = format!("Bearer {token}");

    let wms = send(
        Method::GET,
        &format!("{api}/wms?SERVICE=WMS"),
        &[("authorization", &bearer_jwt)],
        None,
    )
    .await;
    assert_eq!(wms.status, 200, "{}", String::from_utf8_lossy(&wms.body));
    let seen = be.seen().last().unwrap().clone();
    assert_eq!(seen.target, "/cgi-bin/mapserv/?SERVICE=WMS");
    assert_eq!(seen.header("eg-consumer-id"), app["id"].as_str());
    // The query extractor: `?jwt=`.
    let by_query = send(Method::GET, &format!("{api}/wmts/x?jwt={token}"), &[], None).await;
    assert_eq!(by_query.status, 200);
    // The app lacks the wfs scope: the scopes step answers 401.
    let wfs = send(
        Method::GET,
        &format!("{api}/wfs"),
        &[("authorization", &bearer_jwt)],
        None,
    )
    .await;
    assert_eq!(wfs.status, 401);
    // A token signed with another secret, and no token: Kargo's Basic challenge.
    let forged = tokens::hs256(&json!({"sub": "viewer-key", "aud": "kargo.test"}), "guess");
    for headers in [vec![("authorization", format!("Bearer {forged}"))], vec![]] {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let refused = send(Method::GET, &format!("{api}/wms"), &headers, None).await;
        assert_eq!(refused.status, 401);
        assert_eq!(refused.header("www-authenticate"), Some("Basic"));
        assert_eq!(refused.header("eg-consumer-id"), Some("anonymous"));
    }
    // The healthcheck plugin's route.
    let health = send(Method::GET, &format!("{api}/healthcheck"), &[], None).await;
    assert_eq!(health.status, 200);
    assert_eq!(&health.body[..], b"OK");
    // The metrics plugin's counter on the admin listener.
    let metrics = send(Method::GET, &format!("{admin}/metrics"), auth, None).await;
    let text = String::from_utf8_lossy(&metrics.body);
    let consumer = app["id"].as_str().unwrap();
    assert!(
        text.contains(&format!(
            "eg{{type=\"SUCCESS\",status_code=\"200\",consumer=\"{consumer}\",api_endpoint=\"wms\"}} 1"
        )),
        "{text}"
    );
    assert!(
        text.contains(
            "eg{type=\"FAILED\",status_code=\"401\",consumer=\"anonymous\",api_endpoint=\"wms\"} 2"
        ),
        "{text}"
    );
}
