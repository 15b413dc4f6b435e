//! `micro-gw import` from WSO2 API Manager, against the fake API Manager test double
//! (`mgw_e2e::fake_apim`) over real HTTPS with a certificate made in the test: both REST flows,
//! saved settings, prompts on a pseudo-terminal, every documented failure, and one imported
//! project built and serving. Each test has its own config directory and no keyring.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use http::{Method, StatusCode};
use mgw_e2e::backend::{self, TestCertificate};
use mgw_e2e::client::{self, Protocol};
use mgw_e2e::fake_apim::{FakeApi, FakeApim, Fault, REQUIRED_SCOPES};
use mgw_e2e::harness::{self, text, GatewayProcess};
use mgw_e2e::terminal::Terminal;
use mgw_e2e::tokens;
use sha2::{Digest, Sha256};

const USER: &str = "admin";
const PASSWORD: &str = "pa ss&word";

/// A definition as API Manager 3.x's publisher `/swagger` returns it: the x-wso2-* extensions
/// embedded. `BACKEND` is replaced by the test's backend URL.
fn pizza_definition(name: &str, version: &str, base_path: &str) -> String {
    serde_json::json!({
        "openapi": "3.0.1",
        "info": {"title": "pizza", "description": "Pizza ordering", "version": version},
        "servers": [{"url": "/"}],
        "security": [{"default": []}],
        "paths": {
            "/menu": {"get": {
                "responses": {"200": {"description": "OK"}},
                "security": [{"default": []}],
                "x-auth-type": "None",
                "x-throttling-tier": "Unlimited"
            }},
            "/order": {"post": {
                "responses": {"201": {"description": "Created"}},
                "security": [{"default": []}],
                "x-auth-type": "Application & Application User",
                "x-throttling-tier": "Unlimited"
            }}
        },
        "components": {"securitySchemes": {"default": {"type": "oauth2", "flows": {"implicit": {"authorizationUrl": "https://test.com", "scopes": {}}}}}},
        "x-wso2-auth-header": "Authorization",
        "x-throttling-tier": "Unlimited",
        "x-wso2-cors": {"corsConfigurationEnabled": false, "accessControlAllowOrigins": ["*"], "accessControlAllowCredentials": false, "accessControlAllowHeaders": ["authorization"], "accessControlAllowMethods": ["GET"]},
        "x-wso2-production-endpoints": {"urls": ["BACKEND"], "type": "http"},
        "x-wso2-sandbox-endpoints": {"urls": ["BACKEND"], "type": "http"},
        "x-wso2-basePath": base_path,
        "x-wso2-transports": ["http", "https"],
        "x-wso2-application-security": {"security-types": ["oauth2"], "optional": false},
        "x-wso2-response-cache": {"enabled": false, "cacheTimeoutInSeconds": 300},
        "x-wso2-owner": name
    })
    .to_string()
}

fn api_id(name: &str, version: &str) -> String {
    let digest = Sha256::digest(format!("{name}:{version}").as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("api_{hex}")
}

/// A work directory with an initialized project `shop` and its own toolkit config directory.
struct Workspace {
    dir: tempfile::TempDir,
}

impl Workspace {
    fn new() -> Workspace {
        let dir = tempfile::tempdir().unwrap();
        let workspace = Workspace { dir };
        let out = workspace.micro_gw(&["init", "shop"], None);
        assert!(out.status.success(), "{}", text(&out));
        workspace
    }

    fn root(&self) -> &Path {
        self.dir.path()
    }

    fn config_dir(&self) -> PathBuf {
        self.root().join("config")
    }

    fn settings(&self) -> String {
        std::fs::read_to_string(self.config_dir().join("toolkit-config.toml")).unwrap_or_default()
    }

    fn imported(&self) -> PathBuf {
        self.root().join("shop/gen/api_definitions")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(harness::toolkit_bin("micro-gw"));
        command
            .args(harness::with_build_variant(args))
            .current_dir(self.root())
            .env("MGW_CACHE_DIR", harness::cache_dir())
            .env("MGW_CONFIG_DIR", self.config_dir())
            .env("MGW_NO_KEYRING", "1")
            .env_remove("DBUS_SESSION_BUS_ADDRESS");
        command
    }

    /// Runs `micro-gw`, with `stdin` as standard input (else none).
    fn micro_gw(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut command = self.command(args);
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        match stdin {
            None => command.stdin(Stdio::null()).output().unwrap(),
            Some(input) => {
                command.stdin(Stdio::piped());
                let mut child = command.spawn().unwrap();
                child
                    .stdin
                    .take()
                    .unwrap()
                    .write_all(input.as_bytes())
                    .unwrap();
                child.wait_with_output().unwrap()
            }
        }
    }

    /// `import shop` against `apim` with every value given as a flag.
    fn import(&self, apim: &FakeApim, cert: &TestCertificate, extra: &[&str]) -> Output {
        let cert = cert.cert_path.to_str().unwrap().to_string();
        let base = apim.base_url();
        let mut args = vec![
            "import", "shop", "-s", &base, "-u", USER, "-p", PASSWORD, "-t", &cert,
        ];
        args.extend_from_slice(extra);
        self.micro_gw(&args, None)
    }

    /// Every file of the project, for "nothing changed" checks.
    fn snapshot(&self) -> Vec<(PathBuf, Vec<u8>)> {
        let mut files = Vec::new();
        let mut stack = vec![self.root().join("shop")];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    files.push((path.clone(), std::fs::read(&path).unwrap()));
                }
            }
        }
        files.sort();
        files
    }
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn pizza(name: &str, version: &str, labels: &[&str], base_path: &str, backend: &str) -> FakeApi {
    FakeApi::published(
        name,
        version,
        labels,
        &pizza_definition(name, version, base_path).replace("BACKEND", backend),
    )
}

/// A fake API Manager with one published API, `Menu` 1 labelled `edge`.
async fn menu_apim(cert: &TestCertificate) -> FakeApim {
    FakeApim::start(
        cert,
        USER,
        PASSWORD,
        vec![pizza(
            "Menu",
            "1",
            &["edge"],
            "/menu/1",
            "http://127.0.0.1:1",
        )],
        Fault::None,
    )
    .await
}

/// The one test that builds and serves: 3.x by name and version, then the gateway answers
/// with the imported API's extensions applied (base path, endpoint, per-resource security).
#[tokio::test(flavor = "multi_thread")]
async fn v3_import_by_name_and_version_builds_and_serves_the_api() {
    let be = backend::spawn("pizza", SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let cert = TestCertificate::new();
    let apim = FakeApim::start(
        &cert,
        USER,
        PASSWORD,
        vec![
            pizza(
                "PizzaShackAPI",
                "1.0.0",
                &["edge"],
                "/pizzashack/1.0.0",
                &be.url(),
            ),
            // The search matches substrings; these must not be imported.
            pizza(
                "PizzaShackAPIv2",
                "1.0.0",
                &["edge"],
                "/pizzashack2",
                &be.url(),
            ),
            pizza("PizzaShackAPI", "1.0.0-beta", &[], "/pizzabeta", &be.url()),
        ],
        Fault::None,
    )
    .await;
    let ws = Workspace::new();
    let out = ws.import(&apim, &cert, &["-a", "PizzaShackAPI", "-v", "1.0.0"]);
    assert!(out.status.success(), "{}", text(&out));
    let id = api_id("PizzaShackAPI", "1.0.0");
    assert_eq!(
        stdout(&out),
        format!(
            "ID for API with name PizzaShackAPI : {id}\n(Use \"micro-gw build shop\" to build the project)\n"
        )
    );
    let stored = std::fs::read_to_string(ws.imported().join(format!("{id}openAPI.yaml"))).unwrap();
    for extension in [
        "x-wso2-basePath: /pizzashack/1.0.0",
        "x-wso2-production-endpoints",
        "x-wso2-application-security",
        "x-auth-type",
        "title: PizzaShackAPI",
    ] {
        assert!(stored.contains(extension), "{extension} missing:\n{stored}");
    }
    assert_eq!(std::fs::read_dir(ws.imported()).unwrap().count(), 1);

    // The documented calls, in order, with the documented bodies.
    let calls: Vec<String> = apim
        .requests()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(
        calls,
        [
            "POST /client-registration/v0.17/register",
            "POST /oauth2/token",
            "GET /api/am/publisher/v1.2/apis",
            "GET /api/am/publisher/v1.2/apis/7a2298c4-c905-403f-8fac-38c733010000/swagger",
        ]
    );
    let search = &apim.requests_to("/api/am/publisher/v1.2/apis")[0];
    assert_eq!(
        search.query.as_deref(),
        Some("query=name:PizzaShackAPI%20version:1.0.0%20status:PUBLISHED&expand=false")
    );
    let token = &apim.requests_to("/oauth2/token")[0];
    let fields: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(token.body.as_bytes())
            .into_owned()
            .collect();
    assert_eq!(fields["grant_type"], "password");
    assert_eq!(
        fields["password"], PASSWORD,
        "form-encoded, so & and space survive"
    );
    let scopes: Vec<&str> = fields["scope"].split(' ').collect();
    assert_eq!(scopes, REQUIRED_SCOPES);

    // Saved: where and who, never the password or a secret.
    let settings = ws.settings();
    assert!(
        settings.contains(&format!("baseURL = \"{}\"", apim.base_url())),
        "{settings}"
    );
    assert!(settings.contains("username = \"admin\""), "{settings}");
    assert!(settings.contains("trustStoreLocation"), "{settings}");
    assert!(
        settings.contains("restVersion = \"v1.2\"") && settings.contains("dcrVersion = \"v0.17\""),
        "the versions in effect are written: {settings}"
    );
    assert!(
        !settings.contains("pa ss") && !settings.contains("secret-"),
        "{settings}"
    );
    assert!(
        settings.contains("clientId = \"\""),
        "no keyring, so no client is kept: {settings}"
    );
    assert!(
        stderr(&out).contains("MGW_NO_KEYRING"),
        "the missing keyring is said once: {}",
        text(&out)
    );

    // Build and serve.
    let build = ws.micro_gw(&["build", "shop"], None);
    assert!(build.status.success(), "{}", text(&build));
    let conf = ws.root().join("shop/conf/micro-gw.toml");
    let mut conf_text = std::fs::read_to_string(&conf).unwrap();
    conf_text.push_str(&tokens::issuer_config());
    std::fs::write(&conf, conf_text).unwrap();
    let gw = GatewayProcess::start_with_env(
        &ws.root().join("shop/target/shop"),
        &[],
        false,
        &[(tokens::SECRET_ENV, tokens::SECRET)],
    );
    let send = |method: Method, path: &str, auth: Option<String>| {
        let url = format!("http://{}{path}", gw.http);
        async move {
            let headers: Vec<(&str, String)> =
                auth.map(|a| ("authorization", a)).into_iter().collect();
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            client::send(
                Protocol::Http1,
                method,
                &url,
                &headers,
                client::empty(),
                Duration::from_secs(10),
            )
            .await
            .unwrap()
        }
    };
    let reply = send(Method::GET, "/pizzashack/1.0.0/menu", None).await;
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "x-auth-type: None opens /menu"
    );
    assert_eq!(
        reply.json()["path"],
        "/menu",
        "proxied to x-wso2-production-endpoints"
    );
    let reply = send(Method::POST, "/pizzashack/1.0.0/order", None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.json()["fault"]["code"], 900902);
    let good = tokens::token("read", 300);
    let reply = send(
        Method::POST,
        "/pizzashack/1.0.0/order",
        Some(format!("Bearer {good}")),
    )
    .await;
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "OAuth2 as x-wso2-application-security says"
    );
}

/// A second import reuses the saved URL, user and trust store; the password comes on stdin;
/// a label imports every published API that carries it, and a client the server forgot is
/// registered again.
#[tokio::test(flavor = "multi_thread")]
async fn v3_label_import_reuses_saved_settings_and_reads_the_password_from_stdin() {
    let cert = TestCertificate::new();
    let mut draft = pizza("Drafts", "1", &["edge"], "/drafts", "http://127.0.0.1:1");
    draft.status = "CREATED".into();
    let apim = FakeApim::start(
        &cert,
        USER,
        PASSWORD,
        vec![
            pizza("Menu", "1", &["edge"], "/menu/1", "http://127.0.0.1:1"),
            pizza("Orders", "2", &["edge"], "/orders/2", "http://127.0.0.1:1"),
            pizza(
                "Internal",
                "1",
                &["core"],
                "/internal",
                "http://127.0.0.1:1",
            ),
            draft,
        ],
        Fault::None,
    )
    .await;
    let ws = Workspace::new();
    let out = ws.import(&apim, &cert, &["-a", "Menu", "-v", "1"]);
    assert!(out.status.success(), "{}", text(&out));

    apim.forget_clients();
    let out = ws.micro_gw(
        &["import", "shop", "-l", "edge", "--password-stdin"],
        Some(&format!("{PASSWORD}\n")),
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        stdout(&out),
        format!(
            "ID for API with name Menu : {}\nID for API with name Orders : {}\n(Use \"micro-gw build shop\" to build the project)\n",
            api_id("Menu", "1"),
            api_id("Orders", "2")
        )
    );
    let search = apim.requests_to("/api/am/publisher/v1.2/apis");
    assert_eq!(
        search.last().unwrap().query.as_deref(),
        Some("query=label:edge%20status:PUBLISHED&expand=false&limit=500")
    );
    assert_eq!(
        apim.requests_to("/client-registration/v0.17/register")
            .len(),
        2
    );
    // Menu again (same id, replaced) and Orders: two files.
    assert_eq!(std::fs::read_dir(ws.imported()).unwrap().count(), 2);
}

/// API Manager 4.x: the gateway export, a zip of zips; an API Product is skipped with a warning.
#[tokio::test(flavor = "multi_thread")]
async fn v4_export_imports_a_gateway_environment_and_skips_api_products() {
    let cert = TestCertificate::new();
    let mut product = pizza("Bundle", "1", &["Default"], "/bundle", "http://127.0.0.1:1");
    product.product = true;
    let apim = FakeApim::start(
        &cert,
        USER,
        PASSWORD,
        vec![
            pizza("Menu", "1", &["Default"], "/menu/1", "http://127.0.0.1:1"),
            product,
            pizza(
                "Orders",
                "2",
                &["Default"],
                "/orders/2",
                "http://127.0.0.1:1",
            ),
            pizza(
                "Elsewhere",
                "1",
                &["Other"],
                "/elsewhere",
                "http://127.0.0.1:1",
            ),
        ],
        Fault::None,
    )
    .await;
    let ws = Workspace::new();
    let out = ws.import(&apim, &cert, &["--apim-version", "4.2.0", "-l", "Default"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        stdout(&out).contains(&format!(
            "ID for API with name Menu : {}",
            api_id("Menu", "1")
        )) && stdout(&out).contains("ID for API with name Orders"),
        "{}",
        text(&out)
    );
    assert!(
        stderr(&out).contains("skipped API Product Bundle 1"),
        "{}",
        text(&out)
    );
    let export = apim.requests_to("/api/am/publisher/v4/apis/export");
    assert_eq!(export.len(), 1, "{:?}", apim.requests());
    assert_eq!(
        export[0].query.as_deref(),
        Some("gatewayEnvironment=RGVmYXVsdA%3D%3D")
    );
    assert!(
        ws.settings().contains("apimVersion = \"4.2.0\""),
        "{}",
        ws.settings()
    );

    // 4.x needs the label; -a/-v narrow it.
    let out = ws.micro_gw(
        &["import", "shop", "-a", "Menu", "-v", "1", "-p", PASSWORD],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("micro-gw: Missing \"-l <label>\" parameter"),
        "{}",
        text(&out)
    );
    let out = ws.micro_gw(
        &[
            "import", "shop", "-l", "Default", "-a", "Orders", "-v", "2", "-p", PASSWORD,
        ],
        None,
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(!stdout(&out).contains("Menu"), "{}", text(&out));
    // The raw query: name and version as given, the label in Base64 (percent-encoded).
    let export = apim.requests_to("/api/am/publisher/v4/apis/export");
    assert_eq!(
        export.last().unwrap().query.as_deref(),
        Some("name=Orders&version=2&gatewayEnvironment=RGVmYXVsdA%3D%3D")
    );
    let out = ws.micro_gw(&["import", "shop", "-l", "Nowhere", "-p", PASSWORD], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(
            "No APIs found with the provided information for the given gateway label: Nowhere"
        ),
        "{}",
        text(&out)
    );
}

/// Wrong credentials and searches that find nothing: clear messages, nothing written.
#[tokio::test(flavor = "multi_thread")]
async fn wrong_credentials_and_empty_results_say_so_and_change_nothing() {
    let cert = TestCertificate::new();
    let apim = FakeApim::start(
        &cert,
        USER,
        "right",
        vec![pizza(
            "Menu",
            "1",
            &["edge"],
            "/menu/1",
            "http://127.0.0.1:1",
        )],
        Fault::None,
    )
    .await;
    let ws = Workspace::new();
    let before = ws.snapshot();
    let out = ws.import(&apim, &cert, &["-a", "Menu", "-v", "1"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("micro-gw: Invalid user credentials or the user does not have required permissions (client registration (POST ")
            && stderr(&out).contains("answered 401)"),
        "{}",
        text(&out)
    );
    let cert_path = cert.cert_path.to_str().unwrap();
    let base = apim.base_url();
    let ok = |extra: &[&str]| {
        let mut args = vec![
            "import", "shop", "-s", &base, "-u", USER, "-p", "right", "-t", cert_path,
        ];
        args.extend_from_slice(extra);
        ws.micro_gw(&args, None)
    };
    assert_eq!(ws.settings(), "", "a failed import saves no settings");
    let out = ok(&["-a", "Menu", "-v", "2"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("No Published APIs matched for name:Menu, version:2"),
        "{}",
        text(&out)
    );
    let out = ok(&["-l", "nolabel"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("No APIs found for the given label: nolabel"),
        "{}",
        text(&out)
    );
    assert_eq!(
        ws.settings(),
        "",
        "settings are saved only after a successful import"
    );
    assert_eq!(ws.snapshot(), before, "nothing was written");
}

/// Answers that are not the documented shape name the call; a definition that does not load
/// fails the whole multi-API import.
#[tokio::test(flavor = "multi_thread")]
async fn malformed_answers_name_the_call_and_leave_the_project_unchanged() {
    let cert = TestCertificate::new();
    let apis = vec![
        pizza("Menu", "1", &["edge"], "/menu/1", "http://127.0.0.1:1"),
        pizza("Orders", "2", &["edge"], "/orders/2", "http://127.0.0.1:1"),
    ];
    let ws = Workspace::new();
    let before = ws.snapshot();
    for (fault, extra, expected) in [
        (
            Fault::MalformedSearch,
            &["-l", "edge"][..],
            "API search (GET",
        ),
        (
            Fault::MalformedToken,
            &["-l", "edge"][..],
            "`access_token` is missing",
        ),
        (
            Fault::ExportNotZip,
            &["-l", "edge", "--apim-version", "4.0.0"][..],
            "expected a zip",
        ),
    ] {
        let apim = FakeApim::start(&cert, USER, PASSWORD, apis.clone(), fault.clone()).await;
        let out = ws.import(&apim, &cert, extra);
        assert_eq!(out.status.code(), Some(1), "{fault:?}");
        assert!(
            stderr(&out).contains(expected) && stderr(&out).contains("not in the documented shape"),
            "{fault:?}: {}",
            text(&out)
        );
    }
    // Back to 3.x; one of two definitions is broken: neither is written.
    let mut broken = apis.clone();
    broken[1].definition = r#"{"openapi":"3.0.1","info":{"title":"x","version":"2"},"x-wso2-basePath":"/menu/1","paths":{"/x":{"get":{}}}}"#.into();
    let apim = FakeApim::start(&cert, USER, PASSWORD, broken, Fault::None).await;
    let out = ws.import(&apim, &cert, &["-l", "edge", "--apim-version", "3.2.0"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("nothing was imported") && stderr(&out).contains("has no endpoint"),
        "{}",
        text(&out)
    );
    assert_eq!(ws.snapshot(), before, "a failed import writes nothing");
}

/// A server slower than the configured timeout fails in about that time, and says what to raise.
#[tokio::test(flavor = "multi_thread")]
async fn a_slow_server_hits_the_client_timeout() {
    let cert = TestCertificate::new();
    let apim = FakeApim::start(
        &cert,
        USER,
        PASSWORD,
        vec![pizza(
            "Menu",
            "1",
            &["edge"],
            "/menu/1",
            "http://127.0.0.1:1",
        )],
        Fault::Slow(Duration::from_secs(20)),
    )
    .await;
    let ws = Workspace::new();
    std::fs::create_dir_all(ws.config_dir()).unwrap();
    std::fs::write(
        ws.config_dir().join("toolkit-config.toml"),
        "[client]\nhttpRequestTimeout = 1000\n",
    )
    .unwrap();
    let started = Instant::now();
    let out = ws.import(&apim, &cert, &["-l", "edge"]);
    let elapsed = started.elapsed();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        stderr(&out).contains("no answer within 1 s")
            && stderr(&out).contains("httpRequestTimeout"),
        "{}",
        text(&out)
    );
    assert!(elapsed < Duration::from_secs(8), "took {elapsed:?}");
    assert!(ws.settings().contains("httpRequestTimeout = 1000"));
}

/// Certificates that do not verify, servers that are not there, and missing values without a
/// terminal: each says what to do.
#[tokio::test(flavor = "multi_thread")]
async fn connection_certificate_and_missing_value_errors_say_what_to_do() {
    let cert = TestCertificate::new();
    let apim = menu_apim(&cert).await;
    let ws = Workspace::new();
    let base = apim.base_url();
    let args = [
        "import", "shop", "-l", "edge", "-s", &base, "-u", USER, "-p", PASSWORD,
    ];
    let out = ws.micro_gw(&args, None);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("certificate did not verify")
            && err.contains("-t/--truststore")
            && err.contains("-k/--insecure"),
        "{}",
        text(&out)
    );
    let mut insecure = args.to_vec();
    insecure.push("-k");
    let out = ws.micro_gw(&insecure, None);
    assert!(out.status.success(), "{}", text(&out));
    assert!(stderr(&out).contains("not verified"), "{}", text(&out));
    assert!(!ws.settings().contains("insecure"), "-k is never saved");

    let closed = format!("https://127.0.0.1:{}", harness::closed_port());
    let out = ws.micro_gw(
        &["import", "shop", "-l", "edge", "-s", &closed, "-p", "x"],
        None,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&format!(
            "micro-gw: Error occurred while trying to connect with server. Is the server running at {closed}?"
        )),
        "{}",
        text(&out)
    );

    let out = ws.micro_gw(&["import", "nosuch", "-l", "edge"], None);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(
            "Project nosuch does not exist. Please use 'micro-gw init nosuch' to initialize the project."
        ),
        "{}",
        text(&out)
    );

    let fresh = Workspace::new();
    let cases: [(&[&str], &str); 3] = [
        (&["import", "shop", "-l", "edge"], "-s/--server-url"),
        (
            &["import", "shop", "-l", "edge", "-s", &base],
            "-u/--username",
        ),
        (
            &["import", "shop", "-l", "edge", "-s", &base, "-u", USER],
            "-p/--password or --password-stdin",
        ),
    ];
    for (args, flag) in cases {
        let started = Instant::now();
        let out = fresh.micro_gw(args, None);
        assert_eq!(out.status.code(), Some(1));
        assert!(
            stderr(&out).contains(flag) && stderr(&out).contains("not a terminal"),
            "{}",
            text(&out)
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "no waiting for input"
        );
    }
}

/// On a terminal the toolkit asks for what is missing (password hidden, asked again when
/// empty), then saves what it may; `reset` forgets the user and client.
#[tokio::test(flavor = "multi_thread")]
async fn prompts_on_a_terminal_then_reset_forgets_the_user() {
    let cert = TestCertificate::new();
    let apim = menu_apim(&cert).await;
    let ws = Workspace::new();
    let base = apim.base_url();
    let cert_path = cert.cert_path.display().to_string();
    let config_dir = ws.config_dir();
    let cache_dir = harness::cache_dir();
    let mut terminal = Terminal::spawn(
        &harness::toolkit_bin("micro-gw"),
        &["import", "shop", "-a", "Menu", "-v", "1"],
        ws.root(),
        &[
            ("MGW_CACHE_DIR", cache_dir.as_os_str()),
            ("MGW_CONFIG_DIR", config_dir.as_os_str()),
            ("MGW_NO_KEYRING", "1".as_ref()),
        ],
        &["DBUS_SESSION_BUS_ADDRESS"],
    );
    let wait = Duration::from_secs(20);
    terminal.expect("Enter APIM base URL [https://localhost:9443]: ", wait);
    terminal.send_line(&base);
    terminal.expect("Enter Username: ", wait);
    terminal.send_line(USER);
    terminal.expect("Enter Password for admin: ", wait);
    terminal.send_line("");
    terminal.expect("Password can't be empty; enter password for admin", wait);
    terminal.send_line(PASSWORD);
    terminal.expect("Enter Trust store location: [", wait);
    terminal.send_line(&cert_path);
    terminal.expect("ID for API with name Menu", wait);
    assert!(terminal.wait(wait), "{}", terminal.screen());
    assert!(
        !terminal.screen().contains(PASSWORD),
        "the password is not echoed"
    );
    let settings = ws.settings();
    assert!(
        settings.contains(&format!("trustStoreLocation = \"{cert_path}\"")),
        "{settings}"
    );
    assert!(settings.contains("username = \"admin\""), "{settings}");

    // Reset: the user and client go, where the API Manager is stays.
    std::fs::write(
        ws.config_dir().join("toolkit-config.toml"),
        settings.replace("clientId = \"\"", "clientId = \"client-7\""),
    )
    .unwrap();
    let out = ws.micro_gw(&["reset"], None);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        stdout(&out).contains("the username (admin)")
            && stdout(&out).contains("the client id (client-7)"),
        "{}",
        text(&out)
    );
    let after = ws.settings();
    assert!(
        after.contains("username = \"\"") && after.contains("clientId = \"\""),
        "{after}"
    );
    assert!(after.contains(&format!("baseURL = \"{base}\"")), "{after}");
    let out = ws.micro_gw(&["reset"], None);
    assert!(stdout(&out).contains("Nothing to clear"), "{}", text(&out));
}

/// The fake answers 415 to a registration that is not JSON and a token request that is not a
/// form, as the real server does; the toolkit's requests (above) pass that check.
#[tokio::test(flavor = "multi_thread")]
async fn the_fake_refuses_the_wrong_content_types() {
    let cert = TestCertificate::new();
    let apim = FakeApim::start(&cert, USER, PASSWORD, Vec::new(), Fault::None).await;
    let send = |path: &str, content_type: &str, body: &str| {
        let url = format!("{}{path}", apim.base_url());
        let cert_path = cert.cert_path.clone();
        let content_type = content_type.to_string();
        let body = body.to_string();
        async move {
            client::send(
                Protocol::Http1Tls(&cert_path),
                Method::POST,
                &url,
                &[("content-type", content_type.as_str())],
                client::full(body),
                Duration::from_secs(10),
            )
            .await
            .unwrap()
        }
    };
    let registration = r#"{"callbackUrl":"https://wso2.org"}"#;
    let reply = send(
        "/client-registration/v0.17/register",
        "application/x-www-form-urlencoded",
        registration,
    )
    .await;
    assert_eq!(reply.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let reply = send(
        "/client-registration/v0.17/register",
        "application/json",
        registration,
    )
    .await;
    assert_ne!(reply.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let form = "grant_type=password&username=admin";
    let reply = send("/oauth2/token", "application/json", form).await;
    assert_eq!(reply.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let reply = send(
        "/oauth2/token",
        "application/x-www-form-urlencoded; charset=UTF-8",
        form,
    )
    .await;
    assert_ne!(reply.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(apim.requests().len(), 4);
}
