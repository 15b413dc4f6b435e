//! Request and response validation through a built gateway (issue 14 item 4), on a Petstore
//! schema: a valid POST passes with the identical body; missing required fields, a wrong type in
//! a path or query parameter, invalid JSON are 400 listing each problem; a body over the limit is
//! 413; an API without validation passes anything; an upstream body with a bad enum is 500 `Bad
//! Response`; a project without validation is built without the runtime's `validation` feature.

use std::time::Duration;

use http::{Method, StatusCode};
use mgw_e2e::backend::{self, Seen};
use mgw_e2e::client::{self, Protocol, Reply};
use mgw_e2e::harness::{self, GatewayProcess};

/// The Petstore's `Pet` (OpenAPI 3.0, as WSO2's `ValidationTestCase` uses it), validated at the
/// API level; `/loose` is the same API without validation.
const PETSTORE: &str = "openapi: 3.0.0
info: {title: PetStore, version: '1'}
x-wso2-basePath: /petstore
x-wso2-disable-security: true
x-mgw-validation: {request: true, response: true}
x-wso2-endpoints:
  - petBackend: {urls: ['http://127.0.0.1:1']}
x-wso2-production-endpoints: '#/x-wso2-endpoints/petBackend'
paths:
  /pet:
    post:
      requestBody:
        $ref: '#/components/requestBodies/Pet'
      responses:
        '200':
          description: ok
          content:
            application/json:
              schema: {$ref: '#/components/schemas/Pet'}
  /pet/{petId}:
    get:
      parameters:
        - {name: petId, in: path, required: true, schema: {type: integer, format: int64}}
      responses:
        '200':
          description: ok
          content:
            application/json:
              schema: {$ref: '#/components/schemas/Pet'}
  /pet/findByStatus:
    get:
      parameters:
        - name: status
          in: query
          required: true
          explode: true
          schema:
            type: array
            items: {type: string, enum: [available, pending, sold]}
        - {name: limit, in: query, schema: {type: integer, minimum: 1, maximum: 100}}
      responses:
        '200': {description: ok}
  /loose:
    post:
      x-mgw-validation: {request: false, response: false}
      requestBody:
        $ref: '#/components/requestBodies/Pet'
      responses:
        '200': {description: ok}
components:
  requestBodies:
    Pet:
      required: true
      content:
        application/json:
          schema: {$ref: '#/components/schemas/Pet'}
        application/xml:
          schema: {$ref: '#/components/schemas/Pet'}
  schemas:
    Category:
      type: object
      properties:
        id: {type: integer}
        name: {type: string}
        parent: {$ref: '#/components/schemas/Category'}
    Pet:
      type: object
      required: [name, photoUrls]
      properties:
        id: {type: integer, format: int64, readOnly: true}
        category: {$ref: '#/components/schemas/Category'}
        name: {type: string, example: doggie}
        photoUrls:
          type: array
          items: {type: string}
        status:
          type: string
          enum: [available, pending, sold]
          nullable: true
";

const VALID_PET: &str = r#"{"name":"doggie","photoUrls":["https://p.example/1"],"status":"available","category":{"id":1,"name":"dogs","parent":{"name":"animals"}}}"#;

async fn send(gw: &GatewayProcess, method: Method, path: &str, body: &str) -> Reply {
    client::send(
        Protocol::Http1,
        method,
        &format!("http://{}{path}", gw.http),
        &[("Content-Type", "application/json")],
        if body.is_empty() {
            client::empty()
        } else {
            client::full(body.to_string())
        },
        Duration::from_secs(10),
    )
    .await
    .unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn body_text(reply: &Reply) -> String {
    String::from_utf8_lossy(&reply.body).into_owned()
}

fn description(reply: &Reply) -> String {
    reply.json()["fault"]["description"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The upstream: `GET /pet/{id}` answers a pet whose status is not in the enum (`/pet/7`) or a
/// valid one; anything else echoes the request body with its `Content-Type`.
fn upstream(seen: &Seen) -> backend::ScriptedReply {
    let json = vec![("content-type", "application/json".to_string())];
    let echoed = vec![(
        "content-type",
        seen.header("content-type")
            .unwrap_or("application/json")
            .to_string(),
    )];
    match seen.target.as_str() {
        "/pet/7" => (
            200,
            json,
            r#"{"id":7,"name":"rex","photoUrls":[],"status":"hello"}"#.into(),
        ),
        "/pet/8" => (200, json, r#"{"id":8,"name":"rex","photoUrls":[]}"#.into()),
        _ => (200, echoed, seen.body.clone()),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_and_responses_are_checked_against_the_petstore_schema() {
    let be = backend::spawn_scripted(upstream).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let binary = harness::build_project_with(
        dir.path(),
        "validation",
        &[("petstore.yaml", PETSTORE)],
        &[harness::ALL_PARTS],
    );
    let manifest =
        std::fs::read_to_string(dir.path().join("validation/target/gen/Cargo.toml")).unwrap();
    assert!(
        manifest.contains("default = [\"validation\", \"mimalloc\"]"),
        "{manifest}"
    );
    let gw = GatewayProcess::start(
        &binary,
        &[
            format!("--petBackend_prod_endpoint_0={}", be.url()),
            "--limits.max_request_body_bytes=4096".into(),
        ],
        false,
    );

    // A valid body passes, and the upstream receives it byte for byte.
    let reply = send(&gw, Method::POST, "/petstore/pet", VALID_PET).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", body_text(&reply));
    let last = be.seen().pop().unwrap();
    assert_eq!(last.body, VALID_PET);

    // Missing required fields: each is listed, WSO2's 400 fault shape.
    let before = be.seen().len();
    let reply = send(&gw, Method::POST, "/petstore/pet", r#"{"status":"gone"}"#).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let fault = reply.json();
    assert_eq!(fault["fault"]["code"], 400);
    assert_eq!(fault["fault"]["message"], "Bad Request");
    let text = description(&reply);
    assert!(
        text.contains(r#"body#: required property "name" is missing"#),
        "{text}"
    );
    assert!(
        text.contains(r#"body#: required property "photoUrls" is missing"#),
        "{text}"
    );
    assert!(
        text.contains(r#"body#/status: "gone" is not one of"#),
        "{text}"
    );
    assert_eq!(
        be.seen().len(),
        before,
        "a rejected request never goes upstream"
    );

    // A recursive schema is checked all the way down.
    let deep = r#"{"name":"a","photoUrls":[],"category":{"parent":{"parent":{"id":"x"}}}}"#;
    let reply = send(&gw, Method::POST, "/petstore/pet", deep).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(
        description(&reply)
            .contains("body#/category/parent/parent/id: \"x\" is not of type \"integer\""),
        "{}",
        description(&reply)
    );

    // Invalid JSON.
    let reply = send(&gw, Method::POST, "/petstore/pet", r#"{"name": "#).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(
        description(&reply).contains("request body: not valid JSON"),
        "{}",
        body_text(&reply)
    );

    // A required body that is empty.
    let reply = send(&gw, Method::POST, "/petstore/pet", "").await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(
        description(&reply).contains("required but empty"),
        "{}",
        body_text(&reply)
    );

    // Over the body limit: 413 before anything is parsed.
    let big = format!(r#"{{"name":"{}","photoUrls":[]}}"#, "x".repeat(8000));
    let reply = send(&gw, Method::POST, "/petstore/pet", &big).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);

    // Another declared media type passes unchecked.
    let reply = client::send(
        Protocol::Http1,
        Method::POST,
        &format!("http://{}/petstore/pet", gw.http),
        &[("Content-Type", "application/xml")],
        client::full("<Pet/>"),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert_eq!(reply.status, StatusCode::OK, "{}", body_text(&reply));
    assert_eq!(be.seen().pop().unwrap().body, "<Pet/>");

    // Path and query parameters are read as their types.
    let reply = send(&gw, Method::GET, "/petstore/pet/abc", "").await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(
        description(&reply).contains("path parameter 'petId'#: \"abc\" is not of type \"integer\""),
        "{}",
        body_text(&reply)
    );
    let reply = send(
        &gw,
        Method::GET,
        "/petstore/pet/findByStatus?status=sold&status=lost&limit=0",
        "",
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let text = description(&reply);
    assert!(
        text.contains("query parameter 'status'#/1: \"lost\" is not one of"),
        "{text}"
    );
    assert!(
        text.contains("query parameter 'limit'#: 0 is less than the minimum of 1"),
        "{text}"
    );
    let reply = send(&gw, Method::GET, "/petstore/pet/findByStatus?limit=5", "").await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(description(&reply).contains("query parameter 'status': required but missing"));
    let reply = send(
        &gw,
        Method::GET,
        "/petstore/pet/findByStatus?status=sold&status=pending&limit=5",
        "",
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", body_text(&reply));

    // Response validation: an enum value the schema does not allow is WSO2's 500 Bad Response.
    let reply = send(&gw, Method::GET, "/petstore/pet/7", "").await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    let fault = reply.json();
    assert_eq!(fault["fault"]["code"], 500);
    assert_eq!(fault["fault"]["message"], "Bad Response");
    assert!(
        description(&reply).contains("body#/status: \"hello\" is not one of"),
        "{}",
        body_text(&reply)
    );
    let reply = send(&gw, Method::GET, "/petstore/pet/8", "").await;
    assert_eq!(reply.status, StatusCode::OK, "{}", body_text(&reply));
    assert_eq!(reply.json()["name"], "rex");

    // Validation off for one operation: anything passes.
    let reply = send(&gw, Method::POST, "/petstore/loose", r#"{"status":"gone"}"#).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", body_text(&reply));
    assert_eq!(be.seen().pop().unwrap().body, r#"{"status":"gone"}"#);
}

/// `[validation]` off (the default) and no extension: no `validate` step, and the gateway crate
/// does not enable the runtime's `validation` feature.
#[test]
fn a_project_without_validation_is_built_without_the_feature() {
    let dir = tempfile::tempdir().unwrap();
    let plain = PETSTORE.replace("x-mgw-validation: {request: true, response: true}\n", "");
    harness::build_project(dir.path(), "novalidation", &[("petstore.yaml", &plain)]);
    let manifest =
        std::fs::read_to_string(dir.path().join("novalidation/target/gen/Cargo.toml")).unwrap();
    assert!(manifest.contains("default = [\"mimalloc\"]"), "{manifest}");
    let model =
        std::fs::read_to_string(dir.path().join("novalidation/target/gen/model.json")).unwrap();
    assert!(!model.contains("\"validate\""), "no validate step");
}
