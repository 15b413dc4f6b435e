//! Issue 13 items 1 and 7: two gateway processes of one project share their consumers through a
//! real `redis-server` (`[store] redis`): a key-auth credential made through gateway A's admin
//! API authenticates on gateway B within 1 s (measured); with Redis stopped both keep serving
//! from memory and admin writes answer 503; with Redis back, writes work again and B sees them.
//! The same sharing through a real three-node Redis Cluster (`redis-server --cluster-enabled
//! yes`, `redis-cli --cluster create`).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use http::Method;
use mgw_e2e::backend;
use mgw_e2e::client::{self, Protocol, Reply};
use mgw_e2e::harness::{self, GatewayProcess};
use serde_json::{json, Value};

const TOKEN: &str = "redis-admin-token";

pub(crate) use mgw_e2e::harness::free_port;

/// A real `redis-server` on a free port, in a temporary folder, without persistence of its
/// own (`--save '' --appendonly no`); stopped (killed) when dropped.
pub(crate) struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
    extra: Vec<&'static str>,
}

impl RedisServer {
    /// `None` (after saying why) when `redis-server` is not installed; a failure under `CI=true`.
    pub(crate) fn start() -> Option<Self> {
        Self::start_with(Vec::new())
    }

    /// [`RedisServer::start`] with extra `redis-server` arguments.
    pub(crate) fn start_with(extra: Vec<&'static str>) -> Option<Self> {
        let installed = Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
        if !installed {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "redis-server is not installed (CI=true): apt-get install -y redis-server"
            );
            eprintln!("skipped: redis-server is not installed (apt-get install -y redis-server)");
            return None;
        }
        let mut server = Self {
            child: None,
            port: free_port(),
            dir: tempfile::tempdir().unwrap(),
            extra,
        };
        server.spawn();
        Some(server)
    }

    pub(crate) fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Its port.
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// `SHUTDOWN SAVE`: stopped, its data kept in its folder (as a Redis run with persistence).
    pub(crate) fn stop(&mut self) {
        if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) {
            let _ = stream.write_all(b"SHUTDOWN SAVE\r\n");
            let _ = stream.read(&mut [0u8; 64]);
        }
        if let Some(mut child) = self.child.take() {
            let deadline = Instant::now() + Duration::from_secs(5);
            while child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

async fn send(method: Method, url: &str, headers: &[(&str, &str)], body: Option<Value>) -> Reply {
    let mut headers = headers.to_vec();
    if body.is_some() {
        headers.push(("content-type", "application/json"));
    }
    let payload = match &body {
        Some(b) => client::full(b.to_string()),
        None => client::empty(),
    };
    client::send(
        Protocol::Http1,
        method,
        url,
        &headers,
        payload,
        Duration::from_secs(10),
    )
    .await
    .unwrap_or_else(|e| panic!("{url}: {e}"))
}

fn json_body(reply: &Reply) -> Value {
    serde_json::from_slice(&reply.body)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&reply.body)))
}

/// Polls `url` with `key` until it answers 200; how long that took.
async fn until_accepted(url: &str, key: &str, bound: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let reply = send(Method::GET, url, &[("authorization", key)], None).await;
        if reply.status == 200 {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < bound,
            "{url}: still {} after {bound:?}",
            reply.status
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

struct Replica {
    process: GatewayProcess,
    api: String,
    admin: String,
}

fn start_replica(binary: &Path, redis: &str) -> Replica {
    let (port, admin_port) = (free_port(), free_port());
    let args = [
        format!("--express_gateway.http_port={port}"),
        format!("--express_gateway.admin_port={admin_port}"),
        format!("--store.redis={redis}"),
    ];
    let process =
        GatewayProcess::start_with_env(binary, &args, false, &[("MGW_ADMIN_TOKEN", TOKEN)]);
    Replica {
        process,
        api: format!("http://127.0.0.1:{port}"),
        admin: format!("http://127.0.0.1:{admin_port}"),
    }
}

async fn create_key(admin: &str, consumer: &str) -> (Reply, String) {
    let bearer = format!("Bearer {TOKEN}");
    let auth: &[(&str, &str)] = &[("authorization", bearer.as_str())];
    let user = send(
        Method::POST,
        &format!("{admin}/users"),
        auth,
        Some(json!({"username": consumer})),
    )
    .await;
    if user.status != 200 {
        return (user, String::new());
    }
    let key = send(
        Method::POST,
        &format!("{admin}/credentials"),
        auth,
        Some(json!({"consumerId": consumer, "type": "key-auth"})),
    )
    .await;
    assert_eq!(key.status, 200, "{}", String::from_utf8_lossy(&key.body));
    let doc = json_body(&key);
    let api_key = format!(
        "apiKey {}:{}",
        doc["keyId"].as_str().unwrap(),
        doc["keySecret"].as_str().unwrap()
    );
    (key, api_key)
}

/// Builds project `shop` in `dir`: an Express Gateway `[key-auth, proxy]` pipeline on
/// `/keys/*` to `backend`, with Redis named in its conf when `redis` (so that it is built with
/// the Redis client); the gateway binary's path.
fn build_key_auth_project(dir: &Path, backend: &str, redis: bool) -> std::path::PathBuf {
    let init = harness::micro_gw(dir, &["init", "shop"]);
    assert!(init.status.success(), "{}", harness::text(&init));
    let eg = harness::write_file(
        dir,
        "gateway.config.yml",
        &format!(
            "http: {{port: 8080}}\nadmin: {{port: 9876, host: localhost}}\nserviceEndpoints: {{b: {{url: '{backend}'}}}}\npolicies: [proxy, key-auth]\napiEndpoints:\n  keys: {{path: '/keys/*'}}\npipelines:\n  keys:\n    apiEndpoints: [keys]\n    policies: [{{key-auth: }}, {{proxy: {{action: {{serviceEndpoint: b}}}}}}]\n"
        ),
    );
    let import = harness::micro_gw(
        dir,
        &["import", "shop", "--express-gateway", eg.to_str().unwrap()],
    );
    assert!(import.status.success(), "{}", harness::text(&import));
    if redis {
        harness::name_redis_in_conf(&dir.join("shop"));
    }
    let build = if redis {
        harness::micro_gw(dir, &["build", "shop", harness::ALL_PARTS])
    } else {
        harness::micro_gw(dir, &["build", "shop"])
    };
    assert!(build.status.success(), "{}", harness::text(&build));
    dir.join("shop/target/shop")
}

#[tokio::test(flavor = "multi_thread")]
async fn replicas_share_consumers_through_redis_and_ride_out_an_outage() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let be = backend::spawn_scripted(|_| (200, vec![], "ok".to_string()))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let binary = build_key_auth_project(dir.path(), &be.url(), true);

    let a = start_replica(&binary, &redis.url());
    let b = start_replica(&binary, &redis.url());

    // Made through A, authenticating on B within 1 s.
    let (_, ann_key) = create_key(&a.admin, "ann").await;
    let on_b = until_accepted(
        &format!("{}/keys/x", b.api),
        &ann_key,
        Duration::from_secs(1),
    )
    .await;
    eprintln!("propagation A -> B (credential created, first 200 on B): {on_b:?}");
    assert!(on_b <= Duration::from_secs(1), "{on_b:?}");
    let on_a = send(
        Method::GET,
        &format!("{}/keys/x", a.api),
        &[("authorization", &ann_key)],
        None,
    )
    .await;
    assert_eq!(on_a.status, 200);

    // Redis stopped: requests keep passing on both; admin writes answer 503, promptly.
    redis.stop();
    for replica in [&a, &b] {
        let reply = send(
            Method::GET,
            &format!("{}/keys/x", replica.api),
            &[("authorization", &ann_key)],
            None,
        )
        .await;
        assert_eq!(reply.status, 200, "{} without Redis", replica.api);
        let started = Instant::now();
        let (refused, _) = create_key(&replica.admin, "bob").await;
        assert_eq!(
            refused.status,
            503,
            "{}",
            String::from_utf8_lossy(&refused.body)
        );
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        let message = String::from_utf8_lossy(&refused.body);
        assert!(
            message.contains("unavailable") && message.contains("nothing was changed"),
            "{message}"
        );
    }

    // Redis back: writes through A work again (its connection is made anew) and B sees them.
    redis.spawn();
    let started = Instant::now();
    let bob_key = loop {
        let (reply, key) = create_key(&a.admin, "bob").await;
        if reply.status == 200 {
            break key;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "writes did not recover"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let after = until_accepted(
        &format!("{}/keys/x", b.api),
        &bob_key,
        Duration::from_secs(5),
    )
    .await;
    eprintln!("after the restart, A -> B: {after:?}");
    // Both keep the consumers made before the outage.
    for replica in [&a, &b] {
        let reply = send(
            Method::GET,
            &format!("{}/keys/x", replica.api),
            &[("authorization", &ann_key)],
            None,
        )
        .await;
        assert_eq!(reply.status, 200);
    }
    assert!(b
        .process
        .logs()
        .iter()
        .any(|l| l.contains("change subscription back")));
    drop(a);
    drop(b);
}

/// Three cluster-enabled `redis-server`s joined into one Redis Cluster (no replicas).
pub(crate) fn start_cluster() -> Option<Vec<RedisServer>> {
    let mut nodes = Vec::new();
    for _ in 0..3 {
        nodes.push(RedisServer::start_with(vec!["--cluster-enabled", "yes"])?);
    }
    let addresses: Vec<String> = nodes
        .iter()
        .map(|n| format!("127.0.0.1:{}", n.port))
        .collect();
    let created = Command::new("redis-cli")
        .args(["--cluster", "create"])
        .args(&addresses)
        .args(["--cluster-replicas", "0", "--cluster-yes"])
        .output()
        .expect("redis-cli runs");
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    for node in &nodes {
        loop {
            let info = Command::new("redis-cli")
                .args(["-p", &node.port.to_string(), "cluster", "info"])
                .output()
                .expect("redis-cli runs");
            if String::from_utf8_lossy(&info.stdout).contains("cluster_state:ok") {
                break;
            }
            assert!(Instant::now() < deadline, "the cluster did not form");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    Some(nodes)
}

/// Issue 13 item 1: `[store] redis` given a Redis Cluster (its nodes, comma-separated): two
/// gateways share their consumers through it, both ways, within 1 s.
#[tokio::test(flavor = "multi_thread")]
async fn replicas_share_consumers_through_a_redis_cluster() {
    let Some(nodes) = start_cluster() else {
        return;
    };
    let seeds: Vec<String> = nodes
        .iter()
        .map(|n| format!("redis://127.0.0.1:{}", n.port))
        .collect();
    let be = backend::spawn_scripted(|_| (200, vec![], "ok".to_string()))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let binary = build_key_auth_project(dir.path(), &be.url(), true);

    // A knows every node; B only the last one, as a cluster seed.
    let a = start_replica(&binary, &seeds.join(","));
    let b = start_replica(
        &binary,
        &seeds[2].replacen("redis://", "redis+cluster://", 1),
    );
    let (_, ann_key) = create_key(&a.admin, "ann").await;
    let on_b = until_accepted(
        &format!("{}/keys/x", b.api),
        &ann_key,
        Duration::from_secs(1),
    )
    .await;
    eprintln!("cluster propagation A -> B (credential created, first 200 on B): {on_b:?}");
    let (_, bob_key) = create_key(&b.admin, "bob").await;
    let on_a = until_accepted(
        &format!("{}/keys/x", a.api),
        &bob_key,
        Duration::from_secs(1),
    )
    .await;
    eprintln!("cluster propagation B -> A: {on_a:?}");
    assert!(
        a.process
            .logs()
            .iter()
            .any(|l| l.contains("Redis, namespace \"{mgw}\"")),
        "{:?}",
        a.process.logs()
    );
    drop(a);
    drop(b);
    drop(nodes);
}

/// Issue 11: a project whose conf does not name Redis is built without the Redis client; given
/// a Redis URL only at start-up (`MGW_STORE_REDIS`, as a Deployment's Secret would), its gateway
/// exits with a message naming the setting and saying to run `micro-gw build` again. No
/// `redis-server` needed: it stops before connecting.
#[tokio::test(flavor = "multi_thread")]
async fn a_gateway_built_without_redis_refuses_a_redis_url() {
    let dir = tempfile::tempdir().unwrap();
    let binary = build_key_auth_project(dir.path(), "http://127.0.0.1:9", false);
    let manifest = std::fs::read_to_string(dir.path().join("shop/target/gen/Cargo.toml")).unwrap();
    assert!(
        manifest.contains("\ndefault = [\"mimalloc\"]\n"),
        "{manifest}"
    );
    let version = Command::new(&binary).arg("--version").output().unwrap();
    assert!(
        String::from_utf8_lossy(&version.stdout).ends_with("; optional parts: none)\n"),
        "{}",
        harness::text(&version)
    );
    let child = Command::new(&binary)
        .args([
            format!("--express_gateway.http_port={}", free_port()),
            format!("--express_gateway.admin_port={}", free_port()),
        ])
        .env(
            "MGW_STORE_REDIS",
            format!("redis://:s3cret@127.0.0.1:{}/0", harness::closed_port()),
        )
        .env("MGW_ADMIN_TOKEN", TOKEN)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting the gateway");
    let (status, stderr) = harness::wait_for_refusal(child, Duration::from_secs(20));
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("[store] redis"), "{stderr}");
    assert!(stderr.contains("run `micro-gw build` again"), "{stderr}");
    assert!(!stderr.contains("s3cret"), "{stderr}");
}
