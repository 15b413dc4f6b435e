//! Issue 13 item 5: Kargo's storage route (`/s3/[<provider>/]<bucket>/<key…>` on the admin
//! listener) against a real S3-compatible server that verifies AWS Signature V4: `s3rver`
//! (npm), installed by `.ci/run` into `target/s3rver` (or `MGW_S3RVER_DIR`). Its only account
//! is `S3RVER` / `S3RVER`; a request signed with another secret gets `403
//! SignatureDoesNotMatch`. Without s3rver the test says so, and fails under `CI=true`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use http::Method;
use mgw_e2e::client::{self, Protocol, Reply, TestBody};
use mgw_e2e::harness::{self, GatewayProcess};

const TOKEN: &str = "storage-admin-token";

/// A running `s3rver` on a free loopback port, with its data in a temporary folder.
struct S3rver {
    child: Child,
    port: u16,
    _data: tempfile::TempDir,
}

impl S3rver {
    fn script() -> PathBuf {
        std::env::var_os("MGW_S3RVER_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| harness::workspace_root().join("target").join("s3rver"))
            .join("node_modules/s3rver/bin/s3rver.js")
    }

    /// `None` (after saying why) when s3rver or node is missing; a failure under `CI=true`.
    fn start(bucket: &str) -> Option<S3rver> {
        let script = Self::script();
        let node = Command::new("node").arg("--version").output().is_ok();
        if !script.is_file() || !node {
            let why = format!(
                "s3rver is not installed at {} (or node is missing): npm install --prefix target/s3rver s3rver@3.7.1 (.ci/run does it)",
                script.display()
            );
            assert!(std::env::var("CI").as_deref() != Ok("true"), "{why}");
            eprintln!("skipped: {why}");
            return None;
        }
        let data = tempfile::tempdir().unwrap();
        let mut child = Command::new("node")
            .arg(&script)
            .args([
                "-d",
                data.path().to_str().unwrap(),
                "-a",
                "127.0.0.1",
                "-p",
                "0",
            ])
            .args(["--configure-bucket", bucket])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node starts s3rver");
        let (tx, rx) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(port) = line
                    .strip_prefix("S3rver listening on 127.0.0.1:")
                    .and_then(|p| p.trim().parse::<u16>().ok())
                {
                    let _ = tx.send(port);
                }
            }
        });
        let port = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("s3rver says where it listens");
        Some(S3rver {
            child,
            port,
            _data: data,
        })
    }
}

impl Drop for S3rver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

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
    let init = harness::micro_gw(dir, &["init", "kargo"]);
    assert!(init.status.success(), "{}", harness::text(&init));
    let gateway = harness::write_file(
        dir,
        "gateway.config.yml",
        "http: {port: 8080}\nadmin: {port: 9876, host: localhost}\napiEndpoints:\n  storage: {host: '*', paths: '/s3/*'}\nserviceEndpoints:\n  storage: {url: '${STORAGE_URL}'}\npolicies: [proxy]\npipelines:\n  storage:\n    apiEndpoints: [storage]\n    policies:\n      - proxy:\n          - action: {serviceEndpoint: storage, changeOrigin: true, stripPath: true}\n",
    );
    let system = harness::write_file(
        dir,
        "system.config.yml",
        "plugins:\n  storage:\n    providers:\n      local:\n        endpoint: ${S3_ENDPOINT}\n        accessKeyId: ${S3_ACCESS_KEY}\n        secretAccessKey: ${S3_SECRET_ACCESS_KEY}\n        default: true\n      down:\n        endpoint: http://127.0.0.1:1\n        accessKeyId: ${S3_ACCESS_KEY}\n        secretAccessKey: ${S3_SECRET_ACCESS_KEY}\n      ovh:\n        endpoint: ${OVH_S3_ENDPOINT}\n        accessKeyId: ${OVH_S3_ACCESS_KEY}\n        secretAccessKey: ${OVH_S3_SECRET_ACCESS_KEY}\n    package: ./plugins/storage\n",
    );
    let import = harness::micro_gw(
        dir,
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
    let build = harness::micro_gw(dir, &["build", "kargo"]);
    let out = harness::text(&build);
    assert!(build.status.success(), "{out}");
    let manifest = std::fs::read_to_string(dir.join("kargo/target/gen/Cargo.toml")).unwrap();
    assert!(manifest.contains("features = [\"storage\"]"), "{manifest}");
    dir.join("kargo/target/kargo")
}

#[tokio::test(flavor = "multi_thread")]
async fn storage_route_proxies_to_a_signature_checking_s3_server() {
    let Some(s3) = S3rver::start("maps") else {
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
    let env = |secret: &'static str| -> Vec<(&'static str, String)> {
        vec![
            ("MGW_ADMIN_TOKEN", TOKEN.to_string()),
            ("S3_ENDPOINT", endpoint.clone()),
            ("S3_ACCESS_KEY", "S3RVER".into()),
            ("S3_SECRET_ACCESS_KEY", secret.into()),
            ("STORAGE_URL", storage_url.clone()),
        ]
    };
    let start = |vars: &[(&'static str, String)], extra: &[String]| {
        let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let mut all = args.to_vec();
        all.extend_from_slice(extra);
        GatewayProcess::start_with_env(&binary, &all, false, &vars)
    };

    // A key without its secret: a start-up error naming the variable.
    let mut missing = env("S3RVER");
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

    let gw = start(&env("S3RVER"), &[]);
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

    // DELETE, then the object is gone.
    let deleted = send(Method::DELETE, &object, &[auth], client::empty()).await;
    assert_eq!(deleted.status, 204);
    let gone = send(Method::GET, &object, &[auth], client::empty()).await;
    assert_eq!(gone.status, 404);
    drop(gw);

    // A wrong secret: s3rver refuses the signature and its 403 comes back.
    let _gw = start(&env("not-the-secret"), &[]);
    ready(&format!("{admin}/scopes")).await;
    let refused = send(Method::GET, &big, &[auth], client::empty()).await;
    assert_eq!(refused.status, 403);
    assert!(
        String::from_utf8_lossy(&refused.body).contains("SignatureDoesNotMatch"),
        "{:?}",
        refused.body
    );
}
