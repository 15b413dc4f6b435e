//! **Test double** of WSO2 API Manager, for the import end-to-end tests. Not an API Manager:
//! it serves only the calls the toolkit makes, with the paths, bodies and status codes the
//! documented REST contract gives (see docs/api-manager-import.md):
//!
//! - `POST /client-registration/v0.17/register` (Basic user:password, `Content-Type:
//!   application/json`) → `clientId`/`clientSecret`, or 401; 415 for another content type
//! - `POST /oauth2/token` (Basic client, password grant, `Content-Type:
//!   application/x-www-form-urlencoded`) → `access_token`; 401 `invalid_client`, 400
//!   `invalid_grant` for a wrong user password, 400 `invalid_scope` when a scope is missing; 415
//!   for another content type
//! - `GET /api/am/publisher/v1.2/apis?query=…` (Bearer) → APIListDTO; like the real search it
//!   matches names by substring, so the client must filter exactly
//! - `GET /api/am/publisher/v1.2/apis/{id}/swagger` → the definition
//! - `GET /api/am/publisher/v4/apis/export?name&version&gatewayEnvironment=<base64>` → a zip of
//!   zips (`deployments.json`, then `<dir>/api.json` + `<dir>/Definitions/swagger.json`, or
//!   `<dir>/api_product.json` for an API Product), or 404
//!
//! It runs over real HTTPS (rustls) with a [`TestCertificate`] made in the test, records every
//! request, and can misbehave on purpose ([`Fault`]).

use std::collections::HashMap;
use std::convert::Infallible;
use std::io::{Cursor, Write};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use serde_json::{json, Value};
use tokio::net::TcpListener;

use crate::backend::{serve, Backend, TestCertificate};

/// The scopes a token must be asked for.
pub const REQUIRED_SCOPES: [&str; 6] = [
    "apim:tier_view",
    "apim:api_view",
    "apim:api_create",
    "apim:api_publish",
    "apim:api_import_export",
    "apim:api_manage",
];

/// One API the fake knows.
#[derive(Debug, Clone)]
pub struct FakeApi {
    /// Name.
    pub name: String,
    /// Version.
    pub version: String,
    /// Microgateway labels (3.x) / gateway environments it is deployed to (4.x).
    pub labels: Vec<String>,
    /// `PUBLISHED`, `CREATED`, …
    pub status: String,
    /// The definition text `/swagger` and the export return.
    pub definition: String,
    /// An API Product rather than an API (4.x export only).
    pub product: bool,
}

impl FakeApi {
    /// A published API with `labels`.
    pub fn published(name: &str, version: &str, labels: &[&str], definition: &str) -> FakeApi {
        FakeApi {
            name: name.into(),
            version: version.into(),
            labels: labels.iter().map(|l| l.to_string()).collect(),
            status: "PUBLISHED".into(),
            definition: definition.into(),
            product: false,
        }
    }
}

/// Ways to misbehave.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Fault {
    /// Behave.
    #[default]
    None,
    /// Wait this long before answering the publisher search and the export.
    Slow(Duration),
    /// The search answers `{"count":1,"items":[…]}` (no `list`).
    MalformedSearch,
    /// The token answer has no `access_token`.
    MalformedToken,
    /// The export answers JSON instead of a zip.
    ExportNotZip,
}

/// A recorded request.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// Method.
    pub method: String,
    /// Path.
    pub path: String,
    /// Raw query, if any.
    pub query: Option<String>,
    /// The Authorization header.
    pub authorization: Option<String>,
    /// The Content-Type header.
    pub content_type: Option<String>,
    /// Body text.
    pub body: String,
}

#[derive(Default)]
struct State {
    username: String,
    password: String,
    apis: Vec<FakeApi>,
    fault: Fault,
    clients: HashMap<String, String>,
    tokens: Vec<String>,
    requests: Vec<Recorded>,
}

/// A running fake API Manager; stops when dropped.
pub struct FakeApim {
    server: Backend,
    state: Arc<Mutex<State>>,
}

impl FakeApim {
    /// Starts on a free loopback port with `certificate`; `username`/`password` is the one user.
    pub async fn start(
        certificate: &TestCertificate,
        username: &str,
        password: &str,
        apis: Vec<FakeApi>,
        fault: Fault,
    ) -> FakeApim {
        let state = Arc::new(Mutex::new(State {
            username: username.into(),
            password: password.into(),
            apis,
            fault,
            ..State::default()
        }));
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("binding the fake API Manager");
        let handler_state = state.clone();
        let server = serve(listener, Some(certificate.acceptor()), move |req| {
            handle(handler_state.clone(), req)
        })
        .expect("starting the fake API Manager");
        FakeApim { server, state }
    }

    /// `https://127.0.0.1:<port>`
    pub fn base_url(&self) -> String {
        self.server.https_url()
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Recorded> {
        self.state.lock().expect("state").requests.clone()
    }

    /// Requests to `path`.
    pub fn requests_to(&self, path: &str) -> Vec<Recorded> {
        self.requests()
            .into_iter()
            .filter(|r| r.path == path)
            .collect()
    }

    /// Forgets every registered client, as when an administrator deletes the application.
    pub fn forget_clients(&self) {
        self.state.lock().expect("state").clients.clear();
    }
}

type Answer = Result<Response<Full<Bytes>>, Infallible>;

fn answer(status: u16, content_type: &str, body: impl Into<Bytes>) -> Answer {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = StatusCode::from_u16(status).expect("status");
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_str(content_type).expect("content type"),
    );
    Ok(response)
}

fn json_answer(status: u16, body: Value) -> Answer {
    answer(status, "application/json", body.to_string())
}

fn basic(header: Option<&str>) -> Option<(String, String)> {
    let encoded = header?.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.into(), password.into()))
}

fn form(text: &str) -> HashMap<String, String> {
    url::form_urlencoded::parse(text.as_bytes())
        .into_owned()
        .collect()
}

async fn handle(state: Arc<Mutex<State>>, request: Request<Incoming>) -> Answer {
    let method = request.method().to_string();
    let path = request.uri().path().to_string();
    let query = request.uri().query().map(str::to_string);
    let authorization = request
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let content_type = request
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = request
        .into_body()
        .collect()
        .await
        .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
        .unwrap_or_default();
    let fault = {
        let mut state = state.lock().expect("state");
        state.requests.push(Recorded {
            method: method.clone(),
            path: path.clone(),
            query: query.clone(),
            authorization: authorization.clone(),
            content_type: content_type.clone(),
            body: body.clone(),
        });
        state.fault.clone()
    };
    let unauthorized = || {
        json_answer(
            401,
            json!({"code": 401, "message": "Unauthorized", "description": "Unauthenticated request", "moreInfo": "", "error": []}),
        )
    };
    // Like the real server: registration takes JSON, the token endpoint a form.
    let media_type = content_type.as_deref().map(|t| {
        t.split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase()
    });
    let unsupported = || {
        json_answer(
            415,
            json!({"code": 415, "message": "Unsupported Media Type", "description": content_type}),
        )
    };
    match (method.as_str(), path.as_str()) {
        ("POST", "/client-registration/v0.17/register")
            if media_type.as_deref() != Some("application/json") =>
        {
            unsupported()
        }
        ("POST", "/oauth2/token")
            if media_type.as_deref() != Some("application/x-www-form-urlencoded") =>
        {
            unsupported()
        }
        ("POST", "/client-registration/v0.17/register") => {
            let mut state = state.lock().expect("state");
            let Some((user, password)) = basic(authorization.as_deref()) else {
                return unauthorized();
            };
            if user != state.username || password != state.password {
                return unauthorized();
            }
            let Ok(request) = serde_json::from_str::<Value>(&body) else {
                return json_answer(400, json!({"error": "invalid_request"}));
            };
            let expected = [
                ("callbackUrl", json!("https://wso2.org")),
                ("clientName", json!("Micro_Gateway_Cli")),
                ("owner", json!(user)),
                ("saasApp", json!(true)),
                ("grantType", json!("password")),
                ("tokenScope", json!("PRODUCTION")),
            ];
            if expected.iter().any(|(k, v)| request.get(*k) != Some(v)) {
                return json_answer(400, json!({"error": "invalid_request", "body": request}));
            }
            let n = state.clients.len() + 1;
            let (id, secret) = (format!("client-{n}-{user}"), format!("secret-{n}"));
            state.clients.insert(id.clone(), secret.clone());
            json_answer(
                200,
                json!({
                    "clientId": id,
                    "clientName": format!("{user}_Micro_Gateway_Cli"),
                    "callBackURL": "https://wso2.org",
                    "clientSecret": secret,
                    "isSaasApplication": true,
                    "appOwner": user,
                    "jsonString": "{\"grant_types\":\"password\"}"
                }),
            )
        }
        ("POST", "/oauth2/token") => {
            let mut state = state.lock().expect("state");
            let Some((id, secret)) = basic(authorization.as_deref()) else {
                return json_answer(401, json!({"error": "invalid_client"}));
            };
            if state.clients.get(&id) != Some(&secret) {
                return json_answer(
                    401,
                    json!({"error": "invalid_client", "error_description": "A valid OAuth client could not be found"}),
                );
            }
            let fields = form(&body);
            if fields.get("grant_type").map(String::as_str) != Some("password") {
                return json_answer(400, json!({"error": "unsupported_grant_type"}));
            }
            if fields.get("username") != Some(&state.username)
                || fields.get("password") != Some(&state.password)
            {
                return json_answer(
                    400,
                    json!({"error": "invalid_grant", "error_description": "Authentication failed"}),
                );
            }
            let scope = fields.get("scope").cloned().unwrap_or_default();
            let asked: Vec<&str> = scope.split(' ').collect();
            if REQUIRED_SCOPES.iter().any(|s| !asked.contains(s)) {
                return json_answer(400, json!({"error": "invalid_scope"}));
            }
            if fault == Fault::MalformedToken {
                return json_answer(200, json!({"token_type": "Bearer", "expires_in": 3600}));
            }
            let token = format!("token-{}", state.tokens.len() + 1);
            state.tokens.push(token.clone());
            json_answer(
                200,
                json!({"access_token": token, "refresh_token": "r", "scope": scope, "token_type": "Bearer", "expires_in": 3600}),
            )
        }
        ("GET", _) if path.starts_with("/api/am/publisher/") => {
            let token_ok = {
                let state = state.lock().expect("state");
                authorization
                    .as_deref()
                    .and_then(|a| a.strip_prefix("Bearer "))
                    .is_some_and(|t| state.tokens.iter().any(|known| known == t))
            };
            if !token_ok {
                return unauthorized();
            }
            if let Fault::Slow(delay) = fault {
                tokio::time::sleep(delay).await;
            }
            let rest = &path["/api/am/publisher/".len()..];
            let query = form(query.as_deref().unwrap_or_default());
            let state = state.lock().expect("state");
            match rest.split('/').collect::<Vec<_>>().as_slice() {
                ["v1.2", "apis"] => search(&state.apis, &query, &fault),
                ["v1.2", "apis", id, "swagger"] => match state
                    .apis
                    .iter()
                    .enumerate()
                    .find(|(i, _)| api_uuid(*i) == *id)
                {
                    Some((_, api)) => answer(200, "application/json", api.definition.clone()),
                    None => json_answer(404, json!({"code": 404, "message": "Not Found"})),
                },
                ["v4", "apis", "export"] => export(&state.apis, &query, &fault),
                _ => json_answer(404, json!({"code": 404, "message": "Not Found"})),
            }
        }
        _ => json_answer(404, json!({"code": 404, "message": "Not Found"})),
    }
}

fn api_uuid(index: usize) -> String {
    format!("7a2298c4-c905-403f-8fac-38c73301{index:04}")
}

/// Reads `name:X version:Y label:L status:S` (values may hold spaces).
fn search_terms(query: &str) -> HashMap<String, String> {
    let mut terms: HashMap<String, String> = HashMap::new();
    let mut last: Option<String> = None;
    for word in query.split(' ') {
        match word.split_once(':') {
            Some((key, value)) if ["name", "version", "label", "status"].contains(&key) => {
                terms.insert(key.into(), value.into());
                last = Some(key.into());
            }
            _ => {
                if let Some(key) = &last {
                    let value = terms.entry(key.clone()).or_default();
                    value.push(' ');
                    value.push_str(word);
                }
            }
        }
    }
    terms
}

fn search(apis: &[FakeApi], query: &HashMap<String, String>, fault: &Fault) -> Answer {
    let terms = search_terms(query.get("query").map(String::as_str).unwrap_or_default());
    let list: Vec<Value> = apis
        .iter()
        .enumerate()
        .filter(|(_, api)| !api.product)
        // Like API Manager's search: names and versions match by substring.
        .filter(|(_, api)| {
            terms
                .get("name")
                .is_none_or(|n| api.name.contains(n.as_str()))
        })
        .filter(|(_, api)| {
            terms
                .get("version")
                .is_none_or(|v| api.version.contains(v.as_str()))
        })
        .filter(|(_, api)| terms.get("label").is_none_or(|l| api.labels.contains(l)))
        .filter(|(_, api)| {
            terms
                .get("status")
                .is_none_or(|s| api.status.eq_ignore_ascii_case(s))
        })
        .map(|(i, api)| {
            json!({
                "id": api_uuid(i),
                "name": api.name,
                "description": null,
                "context": format!("/{}", api.name.to_lowercase()),
                "version": api.version,
                "provider": "admin",
                "type": "HTTP",
                "lifeCycleStatus": api.status,
                "workflowStatus": null,
                "hasThumbnail": false,
                "securityScheme": ["oauth2"]
            })
        })
        .collect();
    let key = if *fault == Fault::MalformedSearch {
        "items"
    } else {
        "list"
    };
    json_answer(
        200,
        json!({"count": list.len(), key: list, "pagination": {"offset": 0, "limit": 500, "total": list.len(), "next": "", "previous": ""}}),
    )
}

fn export(apis: &[FakeApi], query: &HashMap<String, String>, fault: &Fault) -> Answer {
    let Some(label) = query
        .get("gatewayEnvironment")
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok())
    else {
        return json_answer(400, json!({"code": 400, "message": "Bad Request"}));
    };
    let selected: Vec<&FakeApi> = apis
        .iter()
        .filter(|api| api.labels.contains(&label) && api.status == "PUBLISHED")
        .filter(|api| query.get("name").is_none_or(|n| *n == api.name))
        .filter(|api| query.get("version").is_none_or(|v| *v == api.version))
        .collect();
    if selected.is_empty() {
        return json_answer(
            404,
            json!({"code": 404, "message": "Not Found", "description": "No deployed APIs found"}),
        );
    }
    if *fault == Fault::ExportNotZip {
        return json_answer(200, json!({"list": []}));
    }
    let mut deployments = Vec::new();
    let mut inner_zips = Vec::new();
    for api in selected {
        let dir = format!("{}-{}", api.name, api.version);
        let file = format!("{dir}.zip");
        let inner = if api.product {
            zip_of(&[(
                &format!("{dir}/api_product.json"),
                json!({"type": "api_product", "version": "v4.2.0", "data": {"name": api.name, "version": api.version}})
                    .to_string()
                    .as_bytes(),
            )])
        } else {
            zip_of(&[
                (
                    &format!("{dir}/api.json"),
                    json!({"type": "api", "version": "v4.2.0", "data": {"name": api.name, "version": api.version, "context": format!("/{}", api.name.to_lowercase()), "type": "HTTP"}})
                        .to_string()
                        .as_bytes(),
                ),
                (
                    &format!("{dir}/Definitions/swagger.json"),
                    api.definition.as_bytes(),
                ),
            ])
        };
        deployments.push(json!({"apiFile": file, "environments": [label]}));
        inner_zips.push((file, inner));
    }
    let deployments = json!({"type": "deployment_environments", "version": "v4.2.0", "data": {"deployments": deployments}}).to_string();
    let mut files: Vec<(&str, &[u8])> = vec![("deployments.json", deployments.as_bytes())];
    for (name, bytes) in &inner_zips {
        files.push((name, bytes));
    }
    answer(200, "application/zip", zip_of(&files))
}

/// A deflated zip of `files`.
pub fn zip_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, content) in files {
        writer.start_file(*name, options).expect("zip entry");
        writer.write_all(content).expect("zip write");
    }
    writer.finish().expect("zip finish").into_inner()
}
