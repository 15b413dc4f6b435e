//! Every credential kind through a real gateway: JWTs verified with keys from a JWKS server,
//! opaque tokens introspected at a key manager, WSO2 API keys issued by `GET /apikey` and used
//! in a header or the query, basic auth with a `micro-gw hash` password; subscriptions, the
//! sandbox key type, credentials removed upstream, and secrets kept out of the logs.

use std::io::Write;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use http::{Method, StatusCode};
use mgw_e2e::backend;
use mgw_e2e::client::{self, Protocol, Reply};
use mgw_e2e::harness::{self, GatewayProcess};
use mgw_e2e::tokens::{basic, EcIssuer};
use serde_json::json;

const DEFINITION: &str = "openapi: 3.0.0
info: {title: Schemes, version: 1.0.0}
x-wso2-basePath: /schemes
x-wso2-endpoints:
  - prodBackend: {urls: ['http://127.0.0.1:1']}
  - sandBackend: {urls: ['http://127.0.0.1:1']}
x-wso2-production-endpoints: '#/x-wso2-endpoints/prodBackend'
x-wso2-sandbox-endpoints: '#/x-wso2-endpoints/sandBackend'
components:
  securitySchemes:
    oauth: {type: oauth2, flows: {}}
    basicAuth: {type: http, scheme: basic}
    headerKey: {type: apiKey, in: header, name: api_key}
    queryKey: {type: apiKey, in: query, name: api_key_query}
    cookieKey: {type: apiKey, in: cookie, name: MGW_KEY}
paths:
  /oauth:
    get:
      security: [{oauth: [read]}]
  /basic:
    get:
      security: [{basicAuth: []}]
  /header-key:
    get:
      security: [{headerKey: []}]
  /query-key:
    get:
      security: [{queryKey: []}]
  /cookie-key:
    get:
      security: [{cookieKey: []}]
";

const JWKS_ISSUER: &str = "https://idp.e2e.test/oauth2/token";
const APIKEY_ISSUER: &str = "https://gateway.e2e.test/apikey";
const PASSWORD: &str = "correct horse battery";
const KM_PASSWORD: &str = "key-manager-secret";

async fn get(url: &str, headers: &[(&str, &str)], protocol: Protocol<'_>) -> Reply {
    client::send(
        protocol,
        Method::GET,
        url,
        headers,
        client::empty(),
        Duration::from_secs(10),
    )
    .await
    .unwrap()
}

fn hash_password(dir: &std::path::Path) -> String {
    let mut child = Command::new(harness::toolkit_bin("micro-gw"))
        .arg("hash")
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.take().unwrap(), "{PASSWORD}").unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", harness::text(&output));
    let hash = String::from_utf8(output.stdout).unwrap().trim().to_string();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    hash
}

#[tokio::test(flavor = "multi_thread")]
async fn every_credential_kind_is_validated_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let binary = harness::build_project(dir.path(), "schemes", &[("schemes.yaml", DEFINITION)]);
    let project = dir.path().join("schemes");

    let idp = EcIssuer::new("e2e-key-1");
    let jwks = backend::spawn_fixed(200, idp.jwks.clone()).await.unwrap();
    let expected_auth = basic("gateway", KM_PASSWORD);
    let key_manager = backend::spawn_scripted(move |request| {
        let json = vec![("content-type", "application/json".to_string())];
        if request.header("authorization") != Some(expected_auth.as_str()) {
            return (401, vec![], String::new());
        }
        if request.body.contains("token=opaque-good") {
            (
                200,
                json,
                json!({"active": true, "scope": "read", "client_id": "opaque-app"}).to_string(),
            )
        } else {
            (200, json, r#"{"active":false}"#.to_string())
        }
    })
    .await
    .unwrap();
    let prod = backend::spawn("prod", SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let sand = backend::spawn("sand", SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();

    let hash = hash_password(dir.path());
    let conf = project.join("conf/micro-gw.toml");
    let settings = std::fs::read_to_string(&conf).unwrap()
        + &format!(
            r#"
[[security.jwt_issuers]]
issuer = "{JWKS_ISSUER}"
jwks_url = "{jwks}/jwks.json"
algorithms = ["ES256"]
consumer_key_claim = "azp"
validate_subscription = true

[security.key_manager]
introspection_url = "{km}/oauth2/introspect"
username = "gateway"
password_env = "E2E_KM_PASSWORD"
timeout_ms = 1000

[security.api_keys]
issuer = "{APIKEY_ISSUER}"
certificate = "apikey/signing-cert.pem"
algorithms = ["ES256"]
validate_allowed_apis = true

[security.apikey_issuer]
issuer = "{APIKEY_ISSUER}"
private_key = "apikey/signing-key.pem"
validity_seconds = 600

[[security.users]]
username = "alice"
password_hash = "{hash}"
scopes = ["read"]
"#,
            jwks = jwks.url(),
            km = key_manager.url(),
        );
    std::fs::write(&conf, settings).unwrap();
    let args = vec![
        format!("--prodBackend_prod_endpoint_0={}", prod.url()),
        format!("--sandBackend_sand_endpoint_0={}", sand.url()),
    ];
    let gw =
        GatewayProcess::start_with_env(&binary, &args, false, &[("E2E_KM_PASSWORD", KM_PASSWORD)]);
    let http = |path: &str| format!("http://{}/schemes{path}", gw.http);

    // JWT from the JWKS issuer, subscribed to this API: production endpoint, header removed.
    let subscribed = json!([{"name": "Schemes", "version": "1.0.0", "context": "/schemes"}]);
    let token = idp.token(
        JWKS_ISSUER,
        json!({"sub": "u1", "azp": "jwks-app", "scope": "read", "subscribedAPIs": subscribed}),
    );
    let bearer = format!("Bearer {token}");
    let reply = get(
        &http("/oauth"),
        &[("authorization", &bearer)],
        Protocol::Http1,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(reply.json()["backend"], "prod");
    assert!(reply.json()["headers"].get("authorization").is_none());
    assert_eq!(jwks.request_count(), 1, "keys fetched once, at start-up");

    // keytype SANDBOX goes to the sandbox endpoint.
    let sandbox = idp.token(
        JWKS_ISSUER,
        json!({"sub": "u1", "scope": "read", "keytype": "SANDBOX", "subscribedAPIs": subscribed}),
    );
    let reply = get(
        &http("/oauth"),
        &[("authorization", &format!("Bearer {sandbox}"))],
        Protocol::Http1,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()["backend"], "sand");

    // Not subscribed to this API: 403 900908.
    let other = idp.token(
        JWKS_ISSUER,
        json!({"sub": "u1", "scope": "read", "subscribedAPIs": [{"name": "Other", "version": "1.0.0"}]}),
    );
    let reply = get(
        &http("/oauth"),
        &[("authorization", &format!("Bearer {other}"))],
        Protocol::Http1,
    )
    .await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(reply.json()["fault"]["code"], 900908);

    // Opaque tokens: introspected, cached, refused when inactive.
    for _ in 0..2 {
        let reply = get(
            &http("/oauth"),
            &[("authorization", "Bearer opaque-good")],
            Protocol::Http1,
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK);
    }
    assert_eq!(key_manager.seen().len(), 1, "cached");
    let reply = get(
        &http("/oauth"),
        &[("authorization", "Bearer opaque-revoked")],
        Protocol::Http1,
    )
    .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.json()["fault"]["code"], 900901);

    // Basic auth with the hashed password.
    let alice = basic("alice", PASSWORD);
    let reply = get(
        &http("/basic"),
        &[("authorization", &alice)],
        Protocol::Http1,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    let reply = get(
        &http("/basic"),
        &[("authorization", &basic("alice", "wrong"))],
        Protocol::Http1,
    )
    .await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.json()["fault"]["code"], 900911);
    assert!(reply
        .header("www-authenticate")
        .unwrap()
        .starts_with("Basic"));
    let reply = get(
        &http("/basic"),
        &[("authorization", "Basic bm8tY29sb24=")],
        Protocol::Http1,
    )
    .await;
    assert_eq!(reply.json()["fault"]["code"], 900912);

    // GET /apikey on the HTTPS listener issues an API key to a basic-auth user.
    let cert = project.join("conf/tls/cert.pem");
    let apikey_url = format!("https://127.0.0.1:{}/apikey", gw.https.port());
    let reply = get(
        &apikey_url,
        &[("authorization", &alice)],
        Protocol::Http1Tls(&cert),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    let api_key = String::from_utf8(reply.body.to_vec()).unwrap();
    assert_eq!(api_key.split('.').count(), 3, "{api_key}");
    let reply = get(&apikey_url, &[], Protocol::Http1Tls(&cert)).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    let reply = get(
        &format!("http://{}/apikey", gw.http),
        &[("authorization", &alice)],
        Protocol::Http1,
    )
    .await;
    assert_eq!(
        reply.status,
        StatusCode::NOT_FOUND,
        "only on the HTTPS listener"
    );

    // The key in its header, and in its query parameter; both removed before the upstream.
    let reply = get(
        &http("/header-key"),
        &[
            ("api_key", &api_key),
            ("authorization", "Basic Zm9yOnVwc3RyZWFt"),
        ],
        Protocol::Http1,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.json()["headers"].get("api_key").is_none());
    assert_eq!(
        reply.json()["headers"]["authorization"],
        "Basic Zm9yOnVwc3RyZWFt",
        "an API-key-only resource leaves Authorization to the upstream"
    );
    let reply = get(
        &http(&format!("/query-key?x=1&api_key_query={api_key}")),
        &[],
        Protocol::Http1,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()["query"], "x=1");
    // In the query of a header-scheme resource it is no credential.
    let reply = get(
        &http(&format!("/header-key?api_key={api_key}")),
        &[],
        Protocol::Http1,
    )
    .await;
    assert_eq!(reply.json()["fault"]["code"], 900902);

    // Issue 10 item 10: the key in a cookie, among others, over HTTP/1.1 (one Cookie header,
    // odd spacing) and HTTP/2 (one field per cookie): only that cookie is removed upstream.
    let reply = get(
        &http("/cookie-key"),
        &[(
            "cookie",
            &format!("theme=dark;MGW_KEY={api_key} ;  lang=en"),
        )],
        Protocol::Http1,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(reply.json()["headers"]["cookie"], "theme=dark; lang=en");
    let reply = get(
        &http("/cookie-key"),
        &[
            ("cookie", "theme=dark"),
            ("cookie", &format!("MGW_KEY={api_key}")),
            ("cookie", "lang=en"),
        ],
        Protocol::H2c,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
    assert_eq!(reply.json()["headers"]["cookie"], "theme=dark; lang=en");
    let reply = get(
        &http("/cookie-key"),
        &[("cookie", &format!("MGW_KEY={api_key}"))],
        Protocol::Http1,
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(
        reply.json()["headers"].get("cookie").is_none(),
        "nothing left: no Cookie header"
    );
    let reply = get(
        &http("/cookie-key"),
        &[("cookie", &format!("MGW_KEY={api_key}; MGW_KEY=other"))],
        Protocol::Http1,
    )
    .await;
    assert_eq!(reply.json()["fault"]["code"], 900901, "two different keys");
    let reply = get(
        &http("/cookie-key"),
        &[("MGW_KEY", &api_key)],
        Protocol::Http1,
    )
    .await;
    assert_eq!(
        reply.json()["fault"]["code"],
        900902,
        "a header is not the cookie"
    );

    // Key manager down: 503 that says so, quickly, never a hang. Down before the request:
    // its listener closed and the gateway's kept-alive connection to it too (a key manager
    // only told to stop may still answer one request from another thread).
    key_manager.stop().await;
    let started = Instant::now();
    let reply = get(
        &http("/oauth"),
        &[("authorization", "Bearer opaque-unseen")],
        Protocol::Http1,
    )
    .await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.json()["fault"]["code"], 900900);
    assert!(started.elapsed() < Duration::from_secs(5));

    let logs = gw.logs().join("\n");
    for secret in [
        token.as_str(),
        api_key.as_str(),
        PASSWORD,
        KM_PASSWORD,
        "opaque-good",
        alice.trim_start_matches("Basic "),
    ] {
        assert!(
            !logs.contains(secret),
            "a secret appeared in the log: {secret}"
        );
    }
    assert!(logs.contains("consumer=jwks-app"), "{logs}");
    assert!(logs.contains("consumer=alice"));
}
