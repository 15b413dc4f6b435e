//! Express Gateway's `oauth2-introspect` end to end: a real introspection endpoint served by
//! the test on a free port, the gateway built from a `gateway.config.yml` whose endpoint and
//! `authorization_value` come from the environment. What EG 1.16 does
//! (`lib/policies/oauth2-introspect`, its test `test/policies/oauth2-introspection`, the common
//! auth callback): active tokens holding every endpoint scope pass with the answer as
//! `req.user`; no token, an inactive token, a missing scope and an unreachable endpoint are
//! `401 Unauthorized` text/plain; active answers are remembered `ttl` seconds, inactive ones
//! not at all; `passThrough` continues anonymous.

use std::time::{Duration, Instant};

use http::Method;
use mgw_e2e::backend;
use mgw_e2e::client::{self, Protocol, Reply};
use mgw_e2e::harness::{self, GatewayProcess};

/// What EG's own test sends as `authorization_value`.
const AUTHORIZATION: &str = "Basic YXBpMTpzZWNyZXQ=";

use mgw_e2e::harness::free_port;

async fn get(url: &str, headers: &[(&str, &str)]) -> Reply {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match client::send(
            Protocol::Http1,
            Method::GET,
            url,
            headers,
            client::empty(),
            Duration::from_secs(10),
        )
        .await
        {
            Ok(reply) => return reply,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(err) => panic!("{url}: {err}"),
        }
    }
}

fn assert_unauthorized(reply: &Reply, what: &str) {
    assert_eq!(reply.status, 401, "{what}");
    assert_eq!(&reply.body[..], b"Unauthorized", "{what}");
    assert_eq!(
        reply.header("content-type"),
        Some("text/plain; charset=utf-8"),
        "{what}"
    );
    assert!(reply.header("www-authenticate").is_none(), "{what}");
}

/// Issue 13 item 4 (`oauth2-introspect`).
#[tokio::test(flavor = "multi_thread")]
async fn oauth2_introspect_answers_as_express_gateway() {
    let be = backend::spawn_scripted(|_| (200, vec![], "ok".to_string()))
        .await
        .unwrap();
    let server = backend::spawn_scripted(|seen| {
        if seen.header("authorization") != Some(AUTHORIZATION) {
            return (401, vec![], "Unauthorized".to_string());
        }
        let json = vec![("content-type", "application/json".to_string())];
        let answer = if seen.body == "token=good&token_type_hint=access_token" {
            r#"{"active":true,"scope":"read write","id":"u1","client_id":"app-1"}"#
        } else if seen.body.starts_with("token=noscope&") {
            r#"{"active":true,"scopes":""}"#
        } else {
            r#"{"active":false}"#
        };
        (200, json, answer.to_string())
    })
    .await
    .unwrap();
    let hits = || server.seen().len();

    let dir = tempfile::tempdir().unwrap();
    let init = harness::micro_gw(dir.path(), &["init", "as"]);
    assert!(init.status.success(), "{}", harness::text(&init));
    let config = r#"http: {port: 8080}
serviceEndpoints: {b: {url: 'BACKEND'}}
policies: [proxy, oauth2-introspect]
apiEndpoints:
  scoped: {path: '/scoped/*', scopes: [read]}
  open: {path: '/open/*'}
  short: {path: '/short/*'}
  down: {path: '/down/*'}
  pass: {path: '/pass/*'}
pipelines:
  main:
    apiEndpoints: [scoped, open]
    policies:
      - oauth2-introspect: {action: {endpoint: '${AS_URL}/introspect', authorization_value: '${AS_AUTHORIZATION}'}}
      - proxy: {action: {serviceEndpoint: b}}
  short:
    apiEndpoints: [short]
    policies:
      - oauth2-introspect: {action: {endpoint: '${AS_URL}/introspect', authorization_value: '${AS_AUTHORIZATION}', ttl: 2}}
      - proxy: {action: {serviceEndpoint: b}}
  down:
    apiEndpoints: [down]
    policies:
      - oauth2-introspect: {action: {endpoint: 'http://127.0.0.1:${DEAD_PORT}/introspect', timeout: 500}}
      - proxy: {action: {serviceEndpoint: b}}
  pass:
    apiEndpoints: [pass]
    policies:
      - oauth2-introspect: {action: {endpoint: '${AS_URL}/introspect', authorization_value: '${AS_AUTHORIZATION}', passThrough: true}}
      - proxy: {action: {serviceEndpoint: b}}
"#;
    let eg = harness::write_file(
        dir.path(),
        "gateway.config.yml",
        &config.replace("BACKEND", &be.url()),
    );
    let import = harness::micro_gw(
        dir.path(),
        &["import", "as", "--express-gateway", eg.to_str().unwrap()],
    );
    assert!(import.status.success(), "{}", harness::text(&import));
    let build = harness::micro_gw(dir.path(), &["build", "as"]);
    assert!(build.status.success(), "{}", harness::text(&build));
    let port = free_port();
    let dead_port = free_port().to_string();
    let args = [format!("--express_gateway.http_port={port}")];
    let as_url = server.url();
    let env = [
        ("AS_URL", as_url.as_str()),
        ("AS_AUTHORIZATION", AUTHORIZATION),
        ("DEAD_PORT", dead_port.as_str()),
    ];
    let gw = GatewayProcess::start_with_env(&dir.path().join("as/target/as"), &args, false, &env);
    let api = format!("http://127.0.0.1:{port}");

    // No token: 401 without asking the endpoint.
    assert_unauthorized(&get(&format!("{api}/scoped/a"), &[]).await, "no token");
    assert_eq!(hits(), 0);
    // An inactive token: 401, asked again each time (EG caches active answers only).
    for _ in 0..2 {
        let bad = get(
            &format!("{api}/scoped/a"),
            &[("authorization", "Bearer bad")],
        )
        .await;
        assert_unauthorized(&bad, "inactive token");
    }
    assert_eq!(hits(), 2);
    // What the endpoint was sent: EG's form and the authorization value as is.
    let asked = server.seen().pop().unwrap();
    assert_eq!(asked.method, "POST");
    assert_eq!(asked.target, "/introspect");
    assert_eq!(
        asked.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(asked.body, "token=bad&token_type_hint=access_token");

    // An active token with the endpoint's scope: through, `eg-consumer-id` from the answer's
    // `id`; remembered (no second call), from the header or the `access_token` parameter.
    let good = get(
        &format!("{api}/scoped/a"),
        &[("authorization", "Bearer good")],
    )
    .await;
    assert_eq!(good.status, 200, "{}", String::from_utf8_lossy(&good.body));
    assert_eq!(
        be.seen().last().unwrap().header("eg-consumer-id"),
        Some("u1")
    );
    assert_eq!(hits(), 3);
    let again = get(&format!("{api}/open/b?access_token=good"), &[]).await;
    assert_eq!(again.status, 200);
    assert_eq!(hits(), 3, "the active answer is remembered");
    // Both a header and a parameter: passport-http-bearer's 400, EG's 401.
    let both = get(
        &format!("{api}/open/b?access_token=good"),
        &[("authorization", "Bearer good")],
    )
    .await;
    assert_unauthorized(&both, "two tokens");

    // Active without the endpoint's scope: 401 (not 403) there, accepted where no scope is
    // asked, from the remembered answer; no `id`, no `eg-consumer-id`.
    let scoped = get(
        &format!("{api}/scoped/a"),
        &[("authorization", "Bearer noscope")],
    )
    .await;
    assert_unauthorized(&scoped, "missing scope");
    let open = get(
        &format!("{api}/open/a"),
        &[("authorization", "Bearer noscope")],
    )
    .await;
    assert_eq!(open.status, 200);
    assert_eq!(be.seen().last().unwrap().header("eg-consumer-id"), None);
    assert_eq!(hits(), 4);

    // ttl: 2 — remembered at least a second, asked again once it has passed.
    let short = |api: String| async move {
        get(
            &format!("{api}/short/a"),
            &[("authorization", "Bearer good")],
        )
        .await
    };
    assert_eq!(short(api.clone()).await.status, 200);
    assert_eq!(short(api.clone()).await.status, 200);
    assert_eq!(hits(), 5, "remembered within ttl");
    tokio::time::sleep(Duration::from_millis(3100)).await;
    assert_eq!(short(api.clone()).await.status, 200);
    assert_eq!(hits(), 6, "asked again after ttl");

    // An endpoint nobody listens on: 401, as EG (its `.catch` fails the strategy).
    let started = Instant::now();
    let down = get(
        &format!("{api}/down/a"),
        &[("authorization", "Bearer good")],
    )
    .await;
    assert_unauthorized(&down, "endpoint down");
    assert!(started.elapsed() < Duration::from_secs(5));

    // passThrough: refused tokens continue anonymous, marked on the response.
    let pass = get(&format!("{api}/pass/a"), &[("authorization", "Bearer bad")]).await;
    assert_eq!(pass.status, 200);
    assert_eq!(pass.header("eg-consumer-id"), Some("anonymous"));
    let pass = get(
        &format!("{api}/pass/a"),
        &[("authorization", "Bearer good")],
    )
    .await;
    assert_eq!(pass.status, 200);
    assert_eq!(pass.header("eg-consumer-id"), None);
    drop(gw);
}
