//! Resources secured by OAuth2 JWTs, end to end: WSO2 fault codes and challenges, scopes,
//! the credential header kept from the upstream, and tokens never logged.

use std::net::SocketAddr;
use std::time::Duration;

use http::{Method, StatusCode};
use mgw_e2e::backend;
use mgw_e2e::client::{self, Protocol};
use mgw_e2e::harness::{self, GatewayProcess};
use mgw_e2e::tokens;

const SECURED: &str = "openapi: 3.0.0
info: {title: Secured, version: '1'}
x-wso2-basePath: /sec
x-wso2-endpoints:
  - secBackend: {urls: ['http://127.0.0.1:1']}
x-wso2-production-endpoints: '#/x-wso2-endpoints/secBackend'
components:
  securitySchemes:
    oauth: {type: oauth2, flows: {}}
paths:
  /open: {get: {x-wso2-disable-security: true}}
  /items: {get: {}}
  /admin:
    get:
      security: [{oauth: [admin]}]
  /basic:
    get:
      x-wso2-application-security: {security-types: [basic_auth]}
";

async fn call(gw: &GatewayProcess, path: &str, authorization: Option<&str>) -> client::Reply {
    let headers: Vec<(&str, &str)> = authorization
        .map(|a| ("authorization", a))
        .into_iter()
        .collect();
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

#[tokio::test(flavor = "multi_thread")]
async fn jwt_secured_resources_answer_the_wso2_way() {
    let dir = tempfile::tempdir().unwrap();
    let binary = harness::build_project(dir.path(), "secured", &[("secured.yaml", SECURED)]);
    let conf = dir.path().join("secured/conf/micro-gw.toml");
    let mut settings = std::fs::read_to_string(&conf).unwrap();
    settings.push_str(&tokens::issuer_config());
    std::fs::write(&conf, settings).unwrap();
    let be = backend::spawn("sec", SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let args = vec![format!("--secBackend_prod_endpoint_0={}", be.url())];
    let gw = GatewayProcess::start_with_env(
        &binary,
        &args,
        false,
        &[(tokens::SECRET_ENV, tokens::SECRET)],
    );

    assert_eq!(call(&gw, "/sec/open", None).await.status, StatusCode::OK);

    let reply = call(&gw, "/sec/items", None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.json()["fault"]["code"], 900902);
    assert!(reply
        .header("www-authenticate")
        .unwrap()
        .starts_with("Bearer"));

    let reply = call(&gw, "/sec/items", Some("Bearer not.a.jwt")).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.json()["fault"]["code"], 900901);

    let expired = tokens::token("read", -600);
    let reply = call(&gw, "/sec/items", Some(&format!("Bearer {expired}"))).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.json()["fault"]["code"], 900903);

    let good = tokens::token("read", 300);
    let reply = call(&gw, "/sec/items", Some(&format!("Bearer {good}"))).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(
        reply.json()["headers"].get("authorization").is_none(),
        "the credential does not go upstream"
    );
    // Again: from the verified-token cache.
    assert_eq!(
        call(&gw, "/sec/items", Some(&format!("bearer {good}")))
            .await
            .status,
        StatusCode::OK
    );

    let reply = call(&gw, "/sec/admin", Some(&format!("Bearer {good}"))).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert_eq!(reply.json()["fault"]["code"], 900910);
    let admin = tokens::token("read admin", 300);
    assert_eq!(
        call(&gw, "/sec/admin", Some(&format!("Bearer {admin}")))
            .await
            .status,
        StatusCode::OK
    );

    let reply = call(&gw, "/sec/basic", Some("Basic dXNlcjpwYXNz")).await;
    assert_eq!(
        reply.status,
        StatusCode::UNAUTHORIZED,
        "no [[security.users]]: every basic credential is refused"
    );
    assert_eq!(reply.json()["fault"]["code"], 900911);

    let logs = gw.logs().join("\n");
    for secret in [&good, &expired, &admin] {
        assert!(
            !logs.contains(secret.as_str()),
            "a token appeared in the log"
        );
    }
    assert!(!logs.contains("dXNlcjpwYXNz"));

    // Keeping the credential header is a setting.
    drop(gw);
    let args = vec![
        format!("--secBackend_prod_endpoint_0={}", be.url()),
        "--security.remove_credential_header=false".to_string(),
    ];
    let gw = GatewayProcess::start_with_env(
        &binary,
        &args,
        false,
        &[(tokens::SECRET_ENV, tokens::SECRET)],
    );
    let reply = call(&gw, "/sec/items", Some(&format!("Bearer {good}"))).await;
    assert_eq!(
        reply.json()["headers"]["authorization"],
        format!("Bearer {good}")
    );
}
