//! Issue 14 items 2, 3 and 5: Express Gateway's `rate-limit` on real gateway processes. In
//! memory: EG's headers and bodies, window boundaries, `skipFailedRequests`, the default
//! delay. On a real `redis-server`: two replicas under concurrent load admit at most the
//! quota together (fixed window: exactly `max` in one window; GCRA: at most
//! `burst + ⌊t·max/windowMs⌋`); Redis stopped mid-run: fail open with the per-replica share,
//! fail closed with 503, one warning line, and recovery when Redis is back. On a real
//! three-node Redis Cluster: the same bound, with the counters spread over the primaries.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use http::Method;
use mgw_e2e::backend;
use mgw_e2e::client::{self, Protocol, Reply};
use mgw_e2e::harness::{self, GatewayProcess};

use super::redis_replicas::{free_port, start_cluster, RedisServer};

/// The project: one EG configuration with a rate-limited pipeline per case. The backend
/// answers 500 on `/fail`, 200 elsewhere.
struct Project {
    _dir: tempfile::TempDir,
    binary: PathBuf,
}

fn project() -> &'static Project {
    static PROJECT: OnceLock<Project> = OnceLock::new();
    PROJECT.get_or_init(|| {
        // The backend runs on a runtime of its own, in a thread that lives as long as the
        // test binary (tests run on runtimes of their own that end with them).
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Runtime::new().unwrap();
            runtime.block_on(async move {
                let be = backend::spawn_scripted(|seen| {
                    if seen.target.ends_with("/fail") {
                        (500, vec![], "failed".to_string())
                    } else {
                        (200, vec![], "ok".to_string())
                    }
                })
                .await
                .unwrap();
                tx.send(be.url()).unwrap();
                std::future::pending::<()>().await;
            });
        });
        let backend_url = rx.recv().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let init = harness::micro_gw(dir.path(), &["init", "rl"]);
        assert!(init.status.success(), "{}", harness::text(&init));
        let eg = harness::write_file(
            dir.path(),
            "gateway.config.yml",
            &format!(
                r#"http: {{port: 8080}}
admin: {{port: 9876, host: localhost}}
serviceEndpoints: {{b: {{url: '{backend_url}'}}}}
policies: [proxy, rate-limit]
apiEndpoints:
  shared: {{path: '/shared/*'}}
  smooth: {{path: '/smooth/*'}}
  window: {{path: '/window/*'}}
  skip: {{path: '/skip/*'}}
  delay: {{path: '/delay/*'}}
pipelines:
  shared:
    apiEndpoints: [shared]
    policies:
      - rate-limit: {{action: {{max: 20, windowMs: 60000, delayMs: 0, rateLimitBy: "${{req.headers['x-client']}}"}}}}
      - proxy: {{action: {{serviceEndpoint: b}}}}
  smooth:
    apiEndpoints: [smooth]
    policies:
      - rate-limit: {{action: {{max: 20, windowMs: 60000, delayMs: 0, algorithm: gcra, rateLimitBy: "${{req.headers['x-client']}}"}}}}
      - proxy: {{action: {{serviceEndpoint: b}}}}
  window:
    apiEndpoints: [window]
    policies:
      - rate-limit: {{action: {{max: 3, windowMs: 3000, delayMs: 0, rateLimitBy: "${{req.hostname}}"}}}}
      - proxy: {{action: {{serviceEndpoint: b}}}}
  skip:
    apiEndpoints: [skip]
    policies:
      - rate-limit: {{action: {{max: 2, delayMs: 0, skipFailedRequests: true}}}}
      - proxy: {{action: {{serviceEndpoint: b}}}}
  delay:
    apiEndpoints: [delay]
    policies:
      - rate-limit:
      - proxy: {{action: {{serviceEndpoint: b}}}}
"#,
            ),
        );
        let import = harness::micro_gw(
            dir.path(),
            &["import", "rl", "--express-gateway", eg.to_str().unwrap()],
        );
        assert!(import.status.success(), "{}", harness::text(&import));
        // The Redis tests below give the URL at start-up; the others run without one.
        harness::name_redis_in_conf(&dir.path().join("rl"));
        let build = harness::micro_gw(dir.path(), &["build", "rl", harness::ALL_PARTS]);
        assert!(build.status.success(), "{}", harness::text(&build));
        let text = harness::text(&build);
        assert!(
            text.contains("delayMs: 0") && text.contains("the second request waits 1 s"),
            "the build warns about EG's default delay: {text}"
        );
        let binary = dir.path().join("rl/target/rl");
        Project { _dir: dir, binary }
    })
}

struct Gateway {
    process: GatewayProcess,
    api: String,
}

fn start(args: &[String]) -> Gateway {
    let (port, admin) = (free_port(), free_port());
    let mut all = vec![
        format!("--express_gateway.http_port={port}"),
        format!("--express_gateway.admin_port={admin}"),
    ];
    all.extend_from_slice(args);
    let process = GatewayProcess::start_with_env(
        &project().binary,
        &all,
        false,
        &[("MGW_ADMIN_TOKEN", "rl-token")],
    );
    Gateway {
        process,
        api: format!("http://127.0.0.1:{port}"),
    }
}

async fn get(url: &str, headers: &[(&str, &str)]) -> Reply {
    client::send(
        Protocol::Http1,
        Method::GET,
        url,
        headers,
        client::empty(),
        Duration::from_secs(10),
    )
    .await
    .unwrap_or_else(|e| panic!("{url}: {e}"))
}

fn header<'a>(reply: &'a Reply, name: &str) -> &'a str {
    reply
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("no {name} in {:?}", reply.headers))
}

/// `n` requests from `clients` concurrent clients, spread over `gateways` in turn; how many
/// were admitted (200) and refused (429).
async fn load(
    gateways: &[String],
    path: &str,
    client_key: &str,
    n: usize,
    clients: usize,
) -> (usize, usize) {
    let mut tasks = Vec::new();
    for c in 0..clients {
        let urls: Vec<String> = gateways.iter().map(|g| format!("{g}{path}")).collect();
        let key = client_key.to_string();
        tasks.push(tokio::spawn(async move {
            let (mut ok, mut refused) = (0, 0);
            for i in (c..n).step_by(clients) {
                let url = &urls[i % urls.len()];
                let reply = get(url, &[("x-client", key.as_str())]).await;
                match reply.status.as_u16() {
                    200 => ok += 1,
                    429 => refused += 1,
                    other => panic!("{url}: {other}"),
                }
            }
            (ok, refused)
        }));
    }
    let mut total = (0, 0);
    for t in tasks {
        let (ok, refused) = t.await.unwrap();
        total.0 += ok;
        total.1 += refused;
    }
    total
}

#[tokio::test(flavor = "multi_thread")]
async fn eg_headers_bodies_window_boundaries_skip_and_delay_in_memory() {
    let gw = start(&[]);
    // Window: 3 per 3 s per host name, opened by the first request.
    let url = format!("{}/window/x", gw.api);
    let first = get(&url, &[]).await;
    assert_eq!(first.status, 200);
    assert_eq!(header(&first, "x-ratelimit-limit"), "3");
    assert_eq!(header(&first, "x-ratelimit-remaining"), "2");
    let reset: u64 = header(&first, "x-ratelimit-reset").parse().unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(
        reset >= now + 2 && reset <= now + 4,
        "reset {reset}, now {now}"
    );
    let opened = Instant::now();
    assert_eq!(header(&get(&url, &[]).await, "x-ratelimit-remaining"), "1");
    assert_eq!(header(&get(&url, &[]).await, "x-ratelimit-remaining"), "0");
    let json = get(&url, &[("accept", "application/json")]).await;
    assert_eq!(json.status, 429);
    assert_eq!(header(&json, "retry-after"), "3");
    assert_eq!(header(&json, "vary"), "Accept");
    assert_eq!(header(&json, "x-ratelimit-remaining"), "0");
    assert_eq!(
        header(&json, "content-type"),
        "application/json; charset=utf-8"
    );
    assert_eq!(
        &json.body[..],
        br#"{"message":"Too many requests, please try again later."}"#
    );
    let html = get(&url, &[]).await;
    assert_eq!(html.status, 429);
    assert_eq!(header(&html, "content-type"), "text/html; charset=utf-8");
    assert_eq!(
        &html.body[..],
        b"Too many requests, please try again later."
    );
    // Another host name is another key.
    let other = get(&url, &[("host", "other.example")]).await;
    assert_eq!(other.status, 200);
    // Just before the boundary: still refused; after it: a new window of 3.
    let before = Duration::from_millis(2300).saturating_sub(opened.elapsed());
    tokio::time::sleep(before).await;
    assert_eq!(get(&url, &[]).await.status, 429, "inside the window");
    tokio::time::sleep(
        Duration::from_millis(3000).saturating_sub(opened.elapsed()) + Duration::from_millis(200),
    )
    .await;
    let next = get(&url, &[]).await;
    assert_eq!(next.status, 200, "a new window");
    assert_eq!(header(&next, "x-ratelimit-remaining"), "2");

    // skipFailedRequests: the backend's 500s do not count, its 200s do.
    for _ in 0..5 {
        assert_eq!(get(&format!("{}/skip/fail", gw.api), &[]).await.status, 500);
    }
    assert_eq!(get(&format!("{}/skip/ok", gw.api), &[]).await.status, 200);
    assert_eq!(get(&format!("{}/skip/ok", gw.api), &[]).await.status, 200);
    assert_eq!(get(&format!("{}/skip/ok", gw.api), &[]).await.status, 429);

    // EG's default delay: the second request of a window waits delayMs (1 s).
    let started = Instant::now();
    assert_eq!(get(&format!("{}/delay/a", gw.api), &[]).await.status, 200);
    let first = started.elapsed();
    assert!(first < Duration::from_millis(500), "{first:?}");
    let started = Instant::now();
    assert_eq!(get(&format!("{}/delay/a", gw.api), &[]).await.status, 200);
    let second = started.elapsed();
    assert!(
        second >= Duration::from_millis(1000) && second < Duration::from_millis(1800),
        "{second:?}"
    );
    eprintln!("default delay: first {first:?}, second {second:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn two_replicas_on_one_redis_admit_the_quota_and_ride_out_an_outage() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let url = redis.url();
    let open = start(&[
        format!("--store.redis={url}"),
        "--rate_limit.replicas=2".into(),
        // Generous, so that no decision of the measured load falls back on a loaded machine.
        "--rate_limit.timeout_ms=2000".into(),
    ]);
    let other = start(&[
        format!("--store.redis={url}"),
        "--rate_limit.replicas=2".into(),
        // Generous, so that no decision of the measured load falls back on a loaded machine.
        "--rate_limit.timeout_ms=2000".into(),
    ]);
    let closed = start(&[
        format!("--store.redis={url}"),
        "--rate_limit.on_redis_error=closed".into(),
        "--rate_limit.timeout_ms=500".into(),
    ]);
    let both = [open.api.clone(), other.api.clone()];

    // Fixed window, max 20 per minute: 2 replicas × 20 concurrent clients, 200 requests.
    let started = Instant::now();
    let (ok, refused) = load(&both, "/shared/x", "load", 200, 20).await;
    eprintln!(
        "fixed window, 2 replicas, 200 requests in {:?}: {ok} admitted, {refused} refused",
        started.elapsed()
    );
    assert_eq!(ok, 20, "one window: exactly max admitted across replicas");
    assert_eq!(refused, 180);

    // GCRA, max 20 per minute with bursts of 20: at most 20 + ⌊t · 20 / 60 s⌋.
    let started = Instant::now();
    let (ok, _) = load(&both, "/smooth/x", "load", 200, 20).await;
    let t = started.elapsed();
    let bound = 20 + (t.as_millis() * 20 / 60_000) as usize;
    eprintln!("gcra, 2 replicas, 200 requests in {t:?}: {ok} admitted (bound {bound})");
    assert!(ok <= bound && ok >= 20, "{ok} admitted, bound {bound}");

    // Redis stopped mid-run.
    redis.stop();
    let started = Instant::now();
    let (ok, refused) = load(
        std::slice::from_ref(&open.api),
        "/shared/x",
        "outage",
        40,
        4,
    )
    .await;
    let took = started.elapsed();
    eprintln!("redis down, fail open: {ok} admitted of 40 in {took:?}");
    assert_eq!(ok, 10, "the per-replica share: ceil(20 / 2)");
    assert_eq!(refused, 30);
    assert!(took < Duration::from_secs(5), "{took:?}");
    let started = Instant::now();
    let refused = get(
        &format!("{}/shared/x", closed.api),
        &[("x-client", "closed")],
    )
    .await;
    assert_eq!(refused.status, 503, "fail closed");
    assert_eq!(header(&refused, "retry-after"), "1");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    // One warning line for the whole outage so far (interval 60 s).
    let warnings = open
        .process
        .logs()
        .iter()
        .filter(|l| l.contains("rate-limit counters") && l.contains("unavailable"))
        .count();
    assert_eq!(warnings, 1, "{:#?}", open.process.logs());

    // Redis back: shared counting again on every replica (the count from before the outage
    // was saved with SHUTDOWN SAVE, so `load` is still over its quota).
    redis.spawn();
    let started = Instant::now();
    loop {
        let reply = get(
            &format!("{}/shared/x", closed.api),
            &[("x-client", "after")],
        )
        .await;
        if reply.status == 200 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "fail-closed replica did not recover"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("recovered after {:?}", started.elapsed());
    // Each replica's first calls probe Redis again (after at most its 2 s back-off): sent
    // one at a time, so no request of the measured load is decided locally.
    tokio::time::sleep(Duration::from_secs(2)).await;
    for gw in &both {
        for _ in 0..5 {
            get(&format!("{gw}/shared/x"), &[("x-client", "warm")]).await;
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    let (ok, _) = load(&both, "/shared/x", "after", 40, 4).await;
    assert_eq!(ok, 19, "shared again: 20 per window, one used by the probe");
    let (ok, _) = load(&both, "/shared/x", "load", 10, 2).await;
    assert_eq!(ok, 0, "the window from before the outage is still in Redis");
    assert!(open
        .process
        .wait_for_log("answers again", Duration::from_secs(1))
        .is_some());
}

/// Issue 14 item 3 on a Redis Cluster: two replicas (one given every node, one a single
/// `redis+cluster://` seed) share counters hashed over the three primaries; together they
/// admit exactly `max` per client and window, and GCRA stays within its bound.
#[tokio::test(flavor = "multi_thread")]
async fn two_replicas_on_a_redis_cluster_admit_the_quota() {
    let Some(nodes) = start_cluster() else {
        return;
    };
    let seeds: Vec<String> = nodes
        .iter()
        .map(|n| format!("redis://127.0.0.1:{}", n.port()))
        .collect();
    let settings = |redis: String| {
        vec![
            format!("--rate_limit.redis={redis}"),
            "--rate_limit.replicas=2".into(),
            // Generous, so that no decision of the measured load falls back on a loaded machine.
            "--rate_limit.timeout_ms=2000".into(),
        ]
    };
    let a = start(&settings(seeds.join(",")));
    let b = start(&settings(seeds[2].replacen(
        "redis://",
        "redis+cluster://",
        1,
    )));
    assert!(a
        .process
        .wait_for_log("rate-limit counters in Redis", Duration::from_secs(5))
        .is_some());
    let both = [a.api.clone(), b.api.clone()];

    // Fixed window, max 20 per minute, six clients (keys in different slots): 60 requests
    // each from 10 concurrent connections over both replicas.
    let started = Instant::now();
    for client in ["ann", "bob", "cid", "dan", "eve", "fay"] {
        let (ok, refused) = load(&both, "/shared/x", client, 60, 10).await;
        assert_eq!((ok, refused), (20, 40), "client {client}");
    }
    eprintln!(
        "cluster, fixed window, 2 replicas, 6 clients x 60 requests in {:?}",
        started.elapsed()
    );

    // GCRA, max 20 per minute with bursts of 20: at most 20 + ⌊t · 20 / 60 s⌋.
    let started = Instant::now();
    let (ok, _) = load(&both, "/smooth/x", "gcra", 200, 20).await;
    let t = started.elapsed();
    let bound = 20 + (t.as_millis() * 20 / 60_000) as usize;
    eprintln!("cluster, gcra, 2 replicas, 200 requests in {t:?}: {ok} admitted (bound {bound})");
    assert!(ok <= bound && ok >= 20, "{ok} admitted, bound {bound}");

    // The counters are spread: more than one primary holds some.
    let holding = nodes
        .iter()
        .filter(|n| {
            let out = std::process::Command::new("redis-cli")
                .args(["-p", &n.port().to_string(), "dbsize"])
                .output()
                .expect("redis-cli runs");
            String::from_utf8_lossy(&out.stdout).trim() != "0"
        })
        .count();
    assert!(holding >= 2, "counters on {holding} of 3 primaries");
    for gw in [&a, &b] {
        assert!(
            !gw.process
                .logs()
                .iter()
                .any(|l| l.contains("rate-limit counters") && l.contains("unavailable")),
            "{:#?}",
            gw.process.logs()
        );
    }
}
