//! Issue 13 item 5: Kargo's storage route (`/s3/[<provider>/]<bucket>/<key…>` on the admin
//! listener) against a real S3-compatible server that verifies AWS Signature V4: moto's server
//! (PyPI `moto[server]`) with IAM authentication on (`INITIAL_NO_AUTH_ACTION_COUNT`: the first
//! requests, which create the IAM user, its access key, its policy and the bucket, go
//! unauthenticated; every later one must carry a valid signature, else `403
//! SignatureDoesNotMatch`). `.ci/run` installs it into `target/moto` (or `MGW_MOTO_DIR`). Without
//! it the test says so, and fails under `CI=true`. (npm's s3rver was tried first: it accepts
//! any SigV4 signature — "Signature version 4 calculation is unimplemented" in its source.)

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use http::Method;
use mgw_e2e::client::{self, Protocol, Reply, TestBody};
use mgw_e2e::harness::{self, GatewayProcess};

const TOKEN: &str = "storage-admin-token";

/// The unauthenticated set-up requests moto lets through before it checks signatures.
const SETUP_REQUESTS: usize = 4;

/// A running moto server on a free loopback port, with an IAM user allowed everything and a
/// bucket.
struct Moto {
    child: Child,
    port: u16,
    access_key_id: String,
    secret_access_key: String,
}

fn fake_auth(service: &str) -> String {
    format!("AWS4-HMAC-SHA256 Credential=AKIASETUP/20260101/us-east-1/{service}/aws4_request, SignedHeaders=host;x-amz-date, Signature=0")
}

fn xml_field(xml: &str, name: &str) -> String {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = xml.find(&open).map(|i| i + open.len());
    let end = xml.find(&close);
    match (start, end) {
        (Some(start), Some(end)) if start <= end => xml.get(start..end).unwrap().to_string(),
        _ => panic!("no {name} in {xml}"),
    }
}

impl Moto {
    fn server() -> PathBuf {
        std::env::var_os("MGW_MOTO_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| harness::workspace_root().join("target").join("moto"))
            .join("bin/moto_server")
    }

    /// `None` (after saying why) when moto is missing; a failure under `CI=true`.
    async fn start(bucket: &str) -> Option<Moto> {
        let server = Self::server();
        if !server.is_file() {
            let why = format!(
                "moto is not installed at {}: python3 -m venv target/moto && target/moto/bin/pip install 'moto[server]==5.2.5' (.ci/run does it)",
                server.display()
            );
            assert!(std::env::var("CI").as_deref() != Ok("true"), "{why}");
            eprintln!("skipped: {why}");
            return None;
        }
        let port = free_port();
        let child = Command::new(&server)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("INITIAL_NO_AUTH_ACTION_COUNT", SETUP_REQUESTS.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server starts");
        let mut moto = Moto {
            child,
            port,
            access_key_id: String::new(),
            secret_access_key: String::new(),
        };
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto_server did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let iam_auth = fake_auth("iam");
        let iam = |form: String| {
            let auth = iam_auth.clone();
            let base = base.clone();
            async move {
                let reply = send(
                    Method::POST,
                    &format!("{base}/"),
                    &[
                        ("authorization", auth.as_str()),
                        ("x-amz-date", "20260101T000000Z"),
                        ("content-type", "application/x-www-form-urlencoded"),
                    ],
                    client::full(format!("{form}&Version=2010-05-08")),
                )
                .await;
                let text = String::from_utf8_lossy(&reply.body).to_string();
                assert_eq!(reply.status, 200, "{form}: {text}");
                text
            }
        };
        iam("Action=CreateUser&UserName=gateway".into()).await;
        let key = iam("Action=CreateAccessKey&UserName=gateway".into()).await;
        moto.access_key_id = xml_field(&key, "AccessKeyId");
        moto.secret_access_key = xml_field(&key, "SecretAccessKey");
        // {"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}
        iam("Action=PutUserPolicy&UserName=gateway&PolicyName=all&PolicyDocument=%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Action%22%3A%22*%22%2C%22Resource%22%3A%22*%22%7D%5D%7D".into()).await;
        let s3_auth = fake_auth("s3");
        let created = send(
            Method::PUT,
            &format!("{base}/{bucket}"),
            &[
                ("authorization", s3_auth.as_str()),
                ("x-amz-date", "20260101T000000Z"),
            ],
            client::empty(),
        )
        .await;
        assert_eq!(
            created.status,
            200,
            "{}",
            String::from_utf8_lossy(&created.body)
        );
        Some(moto)
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

use mgw_e2e::harness::free_port;

async fn send(method: Method, url: &str, headers: &[(&str, &str)], body: TestBody) -> Reply {
    client::send(
        Protocol::Http1,
        method,
        url,
        headers,
        body,
        Duration::from_secs(30),
    )
    .await
    .unwrap_or_else(|e| panic!("{url}: {e}"))
}

/// The gateway waits for its admin listener; the first request may race it.
async fn ready(url: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while client::send(
        Protocol::Http1,
        Method::GET,
        url,
        &[],
        client::empty(),
        Duration::from_secs(2),
    )
    .await
    .is_err()
    {
        assert!(Instant::now() < deadline, "{url} never answered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A Kargo-shaped project: the `storage` API endpoint `/s3/*` proxies (stripPath) to the
/// admin listener's `/s3`, and system.config.yml's storage plugin names the providers.
fn build_project(dir: &Path) -> PathBuf {
    // Its own project name: gateways of one name share their binary's path in the shared
    // target directory, and the Kargo tests build `kargo` at the same time.
    let init = harness::micro_gw(dir, &["init", "s3kargo"]);
    assert!(init.status.success(), "{}", harness::text(&init));
    let gateway = harness::write_file(
        dir,
        "gateway.config.yml",
        "http: {port: 8080}\nadmin: {port: 9876, host: localhost}\napiEndpoints:\n  storage: {host: '*', paths: '/s3/*'}\nserviceEndpoints:\n  storage: {url: '${STORAGE_URL}'}\npolicies: [proxy]\npipelines:\n  storage:\n    apiEndpoints: [storage]\n    policies:\n      - proxy:\n          - action: {serviceEndpoint: storage, changeOrigin: true, stripPath: true}\n",
    );
    let system = harness::write_file(
        dir,
        "system.config.yml",
        "plugins:\n  storage:\n    providers:\n      local:\n        endpoint: ${S3_ENDPOINT}\n        accessKeyId: ${S3_ACCESS_KEY}\n        secretAccessKey: ${S3_SECRET_ACCESS_KEY}\n        default: true\n      down:\n        endpoint: http://127.0.0.1:1\n        accessKeyId: ${S3_ACCESS_KEY}\n        secretAccessKey: ${S3_SECRET_ACCESS_KEY}\n      silent:\n        endpoint: ${SILENT_S3_ENDPOINT}\n        accessKeyId: ${S3_ACCESS_KEY}\n        secretAccessKey: ${S3_SECRET_ACCESS_KEY}\n        httpOptions: {timeout: 400}\n      ovh:\n        endpoint: ${OVH_S3_ENDPOINT}\n        accessKeyId: ${OVH_S3_ACCESS_KEY}\n        secretAccessKey: ${OVH_S3_SECRET_ACCESS_KEY}\n    package: ./plugins/storage\n",
    );
    let import = harness::micro_gw(
        dir,
        &[
            "import",
            "s3kargo",
            "--express-gateway",
            gateway.to_str().unwrap(),
            "--system-config",
            system.to_str().unwrap(),
        ],
    );
    assert!(import.status.success(), "{}", harness::text(&import));
    let build = harness::micro_gw(dir, &["build", "s3kargo", harness::ALL_PARTS]);
    let out = harness::text(&build);
    assert!(build.status.success(), "{out}");
    let manifest = std::fs::read_to_string(dir.join("s3kargo/target/gen/Cargo.toml")).unwrap();
    assert!(
        manifest.contains("default = [\"storage\", \"mimalloc\"]"),
        "{manifest}"
    );
    dir.join("s3kargo/target/s3kargo")
}

#[tokio::test(flavor = "multi_thread")]
async fn storage_route_proxies_to_a_signature_checking_s3_server() {
    let Some(s3) = Moto::start("maps").await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let binary = build_project(dir.path());
    let (port, admin_port) = (free_port(), free_port());
    let args = [
        format!("--express_gateway.http_port={port}"),
        format!("--express_gateway.admin_port={admin_port}"),
    ];
    let endpoint = format!("http://127.0.0.1:{}", s3.port);
    let storage_url = format!("http://127.0.0.1:{admin_port}/s3");
    // A provider that accepts connections and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_endpoint = format!("http://{}", silent.local_addr().unwrap());
    let env = |secret: Option<&str>| -> Vec<(&'static str, String)> {
        vec![
            ("MGW_ADMIN_TOKEN", TOKEN.to_string()),
            ("S3_ENDPOINT", endpoint.clone()),
            ("S3_ACCESS_KEY", s3.access_key_id.clone()),
            (
                "S3_SECRET_ACCESS_KEY",
                secret.unwrap_or(&s3.secret_access_key).to_string(),
            ),
            ("STORAGE_URL", storage_url.clone()),
            ("SILENT_S3_ENDPOINT", silent_endpoint.clone()),
        ]
    };
    let start = |vars: &[(&'static str, String)], extra: &[String]| {
        let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let mut all = args.to_vec();
        all.extend_from_slice(extra);
        GatewayProcess::start_with_env(&binary, &all, false, &vars)
    };

    // A key without its secret: a start-up error naming the variable.
    let mut missing = env(None);
    missing.retain(|(k, _)| *k != "S3_SECRET_ACCESS_KEY");
    let out = Command::new(&binary)
        .args(&args)
        .envs(missing.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("S3_SECRET_ACCESS_KEY") && text.contains("secretAccessKey"),
        "{text}"
    );

    let gw = start(&env(None), &[]);
    let admin = format!("http://127.0.0.1:{admin_port}");
    let bearer = format!("Bearer {TOKEN}");
    let auth = ("authorization", bearer.as_str());
    ready(&format!("{admin}/scopes")).await;
    let object = format!("{admin}/s3/maps/dir/a%20b+c.txt");

    // The admin token rules apply to the storage route too.
    let refused = send(Method::GET, &object, &[], client::empty()).await;
    assert_eq!(refused.status, 401);

    // Upload (streamed, UNSIGNED-PAYLOAD), download, Range, HEAD, conditional GET.
    let text = "hello storage route";
    let len = text.len().to_string();
    let put = send(
        Method::PUT,
        &object,
        &[
            auth,
            ("content-type", "text/plain"),
            ("content-length", &len),
        ],
        client::full(text),
    )
    .await;
    assert_eq!(put.status, 200, "{:?}", put.body);
    let etag = put.headers["etag"].to_str().unwrap().to_string();
    let got = send(Method::GET, &object, &[auth], client::empty()).await;
    assert_eq!(got.status, 200);
    assert_eq!(&got.body[..], text.as_bytes());
    assert_eq!(got.headers["content-type"], "text/plain");
    assert_eq!(got.headers["content-length"], len.as_str());
    assert_eq!(got.headers["etag"], etag.as_str());
    assert!(got.headers.contains_key("last-modified"));
    let range = send(
        Method::GET,
        &object,
        &[auth, ("range", "bytes=0-4")],
        client::empty(),
    )
    .await;
    assert_eq!(range.status, 206);
    assert_eq!(&range.body[..], b"hello");
    assert_eq!(
        range.headers["content-range"],
        format!("bytes 0-4/{}", text.len()).as_str()
    );
    let head = send(Method::HEAD, &object, &[auth], client::empty()).await;
    assert_eq!(head.status, 200);
    assert_eq!(head.headers["content-length"], len.as_str());
    assert!(head.body.is_empty());
    let unchanged = send(
        Method::GET,
        &object,
        &[auth, ("if-none-match", &etag)],
        client::empty(),
    )
    .await;
    assert_eq!(unchanged.status, 304);
    // By provider name.
    let named = send(
        Method::GET,
        &format!("{admin}/s3/local/maps/dir/a%20b+c.txt"),
        &[auth],
        client::empty(),
    )
    .await;
    assert_eq!(&named.body[..], text.as_bytes());

    // A bigger object streams both ways (4 MiB).
    let big = format!("{admin}/s3/maps/big.bin");
    let size: u64 = 4 * 1024 * 1024;
    let size_text = size.to_string();
    let put = send(
        Method::PUT,
        &big,
        &[auth, ("content-length", &size_text)],
        client::streamed(size),
    )
    .await;
    assert_eq!(put.status, 200);
    let got = send(Method::GET, &big, &[auth], client::empty()).await;
    assert_eq!(got.body.len() as u64, size);
    assert!(got.body.iter().all(|b| *b == b'z'));

    // Through the gateway's Kargo-shaped pipeline (proxy with stripPath to the admin port):
    // the admin token rules stand, so the client's token reaches the admin listener.
    let via_gateway = send(
        Method::GET,
        &format!("http://127.0.0.1:{port}/s3/maps/dir/a%20b+c.txt"),
        &[auth],
        client::empty(),
    )
    .await;
    assert_eq!(via_gateway.status, 200);
    assert_eq!(&via_gateway.body[..], text.as_bytes());

    // 404s: a missing key (S3's answer), a provider without credentials, path tricks.
    let missing = send(
        Method::GET,
        &format!("{admin}/s3/maps/nothing"),
        &[auth],
        client::empty(),
    )
    .await;
    assert_eq!(missing.status, 404);
    for path in [
        "/s3/ovh/maps/dir/a%20b+c.txt",
        "/s3/maps/..%2Fother/x",
        "/s3/maps/dir/../dir/a%20b+c.txt",
        "/s3/maps/",
    ] {
        let reply = send(
            Method::GET,
            &format!("{admin}{path}"),
            &[auth],
            client::empty(),
        )
        .await;
        assert_eq!(reply.status, 404, "{path}");
        assert!(
            String::from_utf8_lossy(&reply.body).contains("Cannot GET"),
            "{path}"
        );
    }
    // An unreachable provider: 502 as the proxy answers.
    let down = send(
        Method::GET,
        &format!("{admin}/s3/down/maps/x"),
        &[auth],
        client::empty(),
    )
    .await;
    assert_eq!(down.status, 502);
    assert_eq!(&down.body[..], b"Bad gateway.");
    // A provider that does not answer within its httpOptions.timeout (400 ms): the same 502.
    let asked = Instant::now();
    let silent_reply = send(
        Method::GET,
        &format!("{admin}/s3/silent/maps/x"),
        &[auth],
        client::empty(),
    )
    .await;
    assert_eq!(silent_reply.status, 502);
    assert_eq!(&silent_reply.body[..], b"Bad gateway.");
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "{:?}",
        asked.elapsed()
    );

    // DELETE, then the object is gone.
    let deleted = send(Method::DELETE, &object, &[auth], client::empty()).await;
    assert_eq!(deleted.status, 204);
    let gone = send(Method::GET, &object, &[auth], client::empty()).await;
    assert_eq!(gone.status, 404);
    drop(gw);

    // A wrong secret: moto refuses the signature and its 403 comes back.
    let _gw = start(&env(Some("not-the-secret")), &[]);
    ready(&format!("{admin}/scopes")).await;
    let refused = send(Method::GET, &big, &[auth], client::empty()).await;
    assert_eq!(refused.status, 403);
    assert!(
        String::from_utf8_lossy(&refused.body).contains("SignatureDoesNotMatch"),
        "{:?}",
        refused.body
    );
}
