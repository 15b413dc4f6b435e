//! The runtime behind a built gateway: routing, proxying, protocols, faults, shutdown.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use http::{Method, StatusCode, Version};
use mgw_e2e::backend::{self, Backend};
use mgw_e2e::client::{self, Protocol};
use mgw_e2e::harness::{self, GatewayProcess};
use mgw_e2e::raw;
use mgw_e2e::raw_backend::{spawn_raw, RawAnswer, RawBackend};

use crate::routing_project;

async fn backend(name: &str) -> Backend {
    backend::spawn(name, SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("starting a backend")
}

fn override_arg(endpoint: &str, index: usize, url: &str) -> String {
    format!("--{endpoint}_prod_endpoint_{index}={url}")
}

/// The generated crate's build script, for its reading of `MGW_PACK_RELATIVE_RELOCS`.
#[allow(dead_code)]
#[path = "../../templates/gateway/build.rs"]
mod build_script;

/// `readelf` (binutils) on `binary` with `args`, its standard output.
fn readelf(args: &[&str], binary: &std::path::Path) -> String {
    let out = std::process::Command::new("readelf")
        .args(args)
        .arg(binary)
        .output()
        .expect("running readelf (binutils)");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The gateway binary is linked with packed relative relocations (`DT_RELR`, the generated
/// crate's build.rs) where the machine's linker and C library take them, and without where they
/// do not or when `MGW_PACK_RELATIVE_RELOCS=0` says so. Decided here from the tools themselves,
/// not from the build script's probe: glibc's version (`ldd --version`; `DT_RELR` from 2.36) and
/// the linker the binary names in its `.comment` (rust-lld, the default on x86_64 Linux, knows
/// the option from LLD 15; GNU ld, which writes no such line, from 2.38: its `--help`).
#[test]
fn the_gateway_binary_packs_its_relative_relocations_where_the_toolchain_can() {
    if !cfg!(all(
        target_os = "linux",
        target_env = "gnu",
        target_arch = "x86_64"
    )) {
        return;
    }
    let flags_set = ["RUSTFLAGS", "CARGO_ENCODED_RUSTFLAGS"]
        .iter()
        .any(|name| std::env::var(name).is_ok_and(|v| !v.is_empty()));
    if flags_set {
        eprintln!("skipped: RUSTFLAGS may choose another linker than the toolchain's default");
        return;
    }
    let switched_off = std::env::var("MGW_PACK_RELATIVE_RELOCS")
        .is_ok_and(|value| build_script::switched_off(&value));
    let ldd = std::process::Command::new("ldd")
        .arg("--version")
        .output()
        .expect("running ldd --version (glibc)");
    let ldd = String::from_utf8_lossy(&ldd.stdout);
    let glibc: Vec<u32> = ldd
        .lines()
        .next()
        .and_then(|line| line.split_whitespace().last())
        .map(|version| version.split('.').filter_map(|n| n.parse().ok()).collect())
        .unwrap_or_default();
    assert!(
        glibc.len() >= 2,
        "no glibc version in ldd --version:\n{ldd}"
    );
    let glibc_has_relr = (glibc[0], glibc[1]) >= (2, 36);

    let binary = &routing_project().binary;
    let comment = readelf(&["-p", ".comment"], binary);
    let linker_knows_it = match comment.split("Linker: LLD ").nth(1) {
        Some(rest) => rest
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .and_then(|major| major.parse::<u32>().ok())
            .is_some_and(|major| major >= 15),
        None => std::process::Command::new("ld")
            .arg("--help")
            .output()
            .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).contains("pack-relative-relocs")),
    };
    let dynamic = readelf(&["--dynamic", "--wide"], binary);
    assert!(
        dynamic.contains("(NEEDED)"),
        "readelf -d read nothing:\n{dynamic}"
    );
    let expected = glibc_has_relr && linker_knows_it && !switched_off;
    assert_eq!(
        dynamic.contains("(RELR)"),
        expected,
        "DT_RELR in the gateway binary (glibc {glibc:?}, linker knows the option: {linker_knows_it}, \
         MGW_PACK_RELATIVE_RELOCS off: {switched_off}):\n{comment}\n{dynamic}"
    );
    if expected {
        // The loader of an older glibc would skip the table and crash: the binary must say it
        // needs a glibc that applies it.
        let versions = readelf(&["--version-info", "--wide"], binary);
        assert!(
            versions.contains("GLIBC_ABI_DT_RELR"),
            "DT_RELR without a need of GLIBC_ABI_DT_RELR:\n{versions}"
        );

        // The variable turns it off, for a deployment image with an older glibc.
        let dir = tempfile::tempdir().unwrap();
        let plain = harness::build_project_with_env(
            dir.path(),
            "plain",
            &[(
                "plain.yaml",
                "openapi: 3.0.0\ninfo: {title: Plain, version: v1}\n\
                 x-wso2-basePath: /plain\n\
                 x-wso2-production-endpoints: {urls: ['http://127.0.0.1:1']}\n\
                 paths:\n  /x: {get: {}}\n",
            )],
            &[],
            &[("MGW_PACK_RELATIVE_RELOCS", "0")],
        );
        let plain = readelf(&["--dynamic", "--wide"], &plain);
        assert!(
            plain.contains("(NEEDED)") && !plain.contains("(RELR)"),
            "{plain}"
        );
    }
}

/// `micro-gw build --allocator system` keeps the C library's `malloc`: the build says so, the
/// generated crate does not ask for the runtime's `mimalloc` feature, the binary holds none of
/// mimalloc's code (its messages name it), and the gateway proxies as the default build does,
/// which has mimalloc in it.
#[tokio::test(flavor = "multi_thread")]
async fn a_gateway_built_with_the_system_allocator_has_no_mimalloc_and_proxies() {
    let mentions_mimalloc = |binary: &std::path::Path| {
        let bytes = std::fs::read(binary).expect("the gateway binary");
        bytes.windows(8).any(|window| window == b"mimalloc")
    };
    assert!(
        mentions_mimalloc(&routing_project().binary),
        "the default build has mimalloc"
    );
    let be = backend("sys").await;
    let dir = tempfile::tempdir().unwrap();
    let init = harness::micro_gw(dir.path(), &["init", "sysalloc"]);
    assert!(init.status.success(), "{}", harness::text(&init));
    harness::write_file(
        &dir.path().join("sysalloc/api_definitions"),
        "sys.yaml",
        &format!(
            "openapi: 3.0.0\ninfo: {{title: Sys, version: v1}}\n\
             x-wso2-basePath: /sys\n\
             x-wso2-disable-security: true\n\
             x-wso2-production-endpoints: {{urls: ['{}']}}\n\
             paths:\n  /echo: {{get: {{}}}}\n",
            be.url()
        ),
    );
    let build = harness::micro_gw(dir.path(), &["build", "sysalloc", "--allocator", "system"]);
    let out = harness::text(&build);
    assert!(build.status.success(), "{out}");
    assert!(
        out.contains("Allocator: the C library's malloc (--allocator system)"),
        "{out}"
    );
    let manifest =
        std::fs::read_to_string(dir.path().join("sysalloc/target/gen/Cargo.toml")).unwrap();
    assert!(manifest.contains("\ndefault = []\n"), "{manifest}");
    let binary = dir.path().join("sysalloc/target/sysalloc");
    assert!(
        !mentions_mimalloc(&binary),
        "mimalloc in {}",
        binary.display()
    );
    // `--version` says which allocator a binary has.
    let version_of = |binary: &std::path::Path| {
        let out = std::process::Command::new(binary)
            .arg("--version")
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let version = version_of(&binary);
    assert!(version.contains("; allocator: system; "), "{version}");
    let version = version_of(&routing_project().binary);
    assert!(version.contains("; allocator: mimalloc; "), "{version}");
    let gw = GatewayProcess::start(&binary, &[], true);
    let reply = client::get(&format!("http://{}/sys/echo?q=1", gw.http)).await;
    assert_eq!(reply.status, StatusCode::OK, "{:?}", gw.logs());
    let echo = reply.json();
    assert_eq!(echo["path"], "/echo");
    assert_eq!(echo["query"], "q=1");
    assert_eq!(be.request_count(), 1);
}

/// Starts the routing gateway with petstoreBackend pointing at `backend`.
fn gateway_for(backend: &Backend, extra: &[String]) -> GatewayProcess {
    let mut args = vec![override_arg("petstoreBackend", 0, &backend.url())];
    args.extend_from_slice(extra);
    GatewayProcess::start(&routing_project().binary, &args, true)
}

#[tokio::test(flavor = "multi_thread")]
pub(crate) async fn proxies_path_parameters_query_strings_and_forwarding_headers() {
    let be = backend("b1").await;
    let gw = gateway_for(&be, &[]);
    let reply = client::send(
        Protocol::Http1,
        Method::GET,
        &format!(
            "http://{}/petstore/v1/pet/a%20b%3a?status=a%20b&x=%2F",
            gw.http
        ),
        &[
            ("connection", "x-drop-me"),
            ("x-drop-me", "1"),
            ("x-keep", "yes"),
            ("proxy-authorization", "Basic eA=="),
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-proto", "https"),
        ],
        client::empty(),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert_eq!(reply.status, StatusCode::OK);
    let echo = reply.json();
    assert_eq!(
        echo["path"], "/pet/a%20b%3A",
        "escapes reach the upstream (hex in canonical upper case); the query is untouched"
    );
    assert_eq!(echo["query"], "status=a%20b&x=%2F");
    let headers = &echo["headers"];
    assert_eq!(headers["x-keep"], "yes");
    assert!(
        headers.get("x-drop-me").is_none(),
        "headers named in Connection are dropped: {headers}"
    );
    assert!(headers.get("proxy-authorization").is_none(), "{headers}");
    assert_eq!(
        headers["x-forwarded-for"], "127.0.0.1",
        "an untrusted client cannot spoof it"
    );
    assert_eq!(headers["x-forwarded-proto"], "http");
    assert_eq!(headers["x-forwarded-host"], gw.http.to_string());
    assert_eq!(
        headers["host"],
        be.addr.to_string(),
        "Host is the upstream's"
    );
    assert!(
        reply.headers.get("keep-alive").is_none(),
        "hop-by-hop response headers are dropped"
    );
    assert_eq!(reply.header("x-backend"), Some("b1"));

    // Static segments win over parameters.
    let reply = client::get(&format!(
        "http://{}/petstore/v1/pet/findByStatus?status=sold",
        gw.http
    ))
    .await;
    assert_eq!(reply.json()["path"], "/pet/findByStatus");

    // The access log has one line per request, with the upstream.
    let line = gw
        .wait_for_log("GET /petstore/v1/pet/findByStatus", Duration::from_secs(5))
        .expect("an access-log line");
    assert!(line.contains(" 200 ") && line.contains(&be.url()), "{line}");
}

#[tokio::test(flavor = "multi_thread")]
async fn trusted_proxies_keep_their_forwarding_headers() {
    let be = backend("b1").await;
    let gw = gateway_for(
        &be,
        &["--forwarding.trusted_proxies=127.0.0.0/8".to_string()],
    );
    let reply = client::send(
        Protocol::Http1,
        Method::GET,
        &format!("http://{}/petstore/v1/pet/1", gw.http),
        &[
            ("x-forwarded-for", "203.0.113.9"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "api.example.com"),
        ],
        client::empty(),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    let headers = &reply.json()["headers"];
    assert_eq!(headers["x-forwarded-for"], "203.0.113.9, 127.0.0.1");
    assert_eq!(headers["x-forwarded-proto"], "https");
    assert_eq!(headers["x-forwarded-host"], "api.example.com");
}

#[tokio::test(flavor = "multi_thread")]
async fn answers_404_405_and_health_with_wso2_bodies() {
    let be = backend("b1").await;
    let gw = gateway_for(&be, &[]);
    let reply = client::get(&format!("http://{}/no/such/api", gw.http)).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(reply.json()["fault"]["code"], 900906);

    let reply = client::send(
        Protocol::Http1,
        Method::PUT,
        &format!("http://{}/petstore/v1/pet/7", gw.http),
        &[],
        client::full("{}"),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(reply.header("allow"), Some("DELETE, GET"));
    assert!(reply.json()["fault"]["description"]
        .as_str()
        .unwrap()
        .contains("Method not allowed"));

    for url in [
        format!("http://{}/health", gw.http),
        format!("https://{}/health", gw.https),
    ] {
        let protocol = if url.starts_with("https") {
            Protocol::Http1Tls(&routing_project().cert)
        } else {
            Protocol::Http1
        };
        let reply = client::send(
            protocol,
            Method::GET,
            &url,
            &[],
            client::empty(),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
        assert_eq!(reply.status, StatusCode::OK, "{url}");
        assert_eq!(reply.json(), serde_json::json!({"status": "healthy"}));
    }
    assert_eq!(be.request_count(), 0, "nothing above reaches the upstream");
}

#[tokio::test(flavor = "multi_thread")]
pub(crate) async fn speaks_h2_over_tls_and_h2c_with_prior_knowledge() {
    let be = backend("b1").await;
    let gw = gateway_for(&be, &[]);
    let cert = &routing_project().cert;
    let reply = client::send(
        Protocol::H2Tls(cert),
        Method::GET,
        &format!("https://{}/petstore/v1/pet/3?q=1", gw.https),
        &[],
        client::empty(),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.version, Version::HTTP_2);
    let echo = reply.json();
    assert_eq!(echo["path"], "/pet/3");
    assert_eq!(echo["query"], "q=1");
    assert_eq!(echo["version"], "HTTP/1.1", "the upstream leg is HTTP/1.1");
    assert_eq!(echo["headers"]["x-forwarded-proto"], "https");

    let reply = client::send(
        Protocol::H2c,
        Method::GET,
        &format!("http://{}/petstore/v1/pet/4", gw.http),
        &[],
        client::empty(),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert_eq!(reply.version, Version::HTTP_2);
    assert_eq!(reply.json()["path"], "/pet/4");

    let reply = client::send(
        Protocol::Http1Tls(cert),
        Method::GET,
        &format!("https://{}/petstore/v1/pet/5", gw.https),
        &[],
        client::empty(),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert_eq!(reply.version, Version::HTTP_11);
    assert_eq!(reply.status, StatusCode::OK);
}

/// Bodies stream through in constant memory (issue 16, target 6): a 50 MB request body and a
/// 50 MB response body, over HTTP/1.1 and h2c each, raise the gateway's peak resident memory
/// (`VmHWM`) by less than [`STREAMING_RSS_GROWTH_KB`]. The baseline is taken after one small
/// request of each kind and protocol, so that what every connection and the first proxied
/// request allocate once (pools, buffers, glibc's per-thread arenas) is already in it.
#[tokio::test(flavor = "multi_thread")]
pub(crate) async fn streams_50_mb_bodies_both_ways_in_constant_memory() {
    const TOTAL: usize = 50 * 1024 * 1024;
    let be = backend("b1").await;
    // The response side: a backend answering every request with a body of `x`s, whose size
    // the request's query gives (`?n=<bytes>`).
    let big = backend::spawn_scripted(|seen| {
        let n = seen
            .target
            .split_once("?n=")
            .and_then(|(_, n)| n.parse::<usize>().ok())
            .unwrap_or(0);
        (200, vec![], "x".repeat(n.min(TOTAL)))
    })
    .await
    .expect("starting the answering backend");
    let gw = gateway_for(
        &be,
        &[
            "--listener.worker_threads=2".to_string(),
            override_arg("lbBackend", 0, &big.url()),
            override_arg("lbBackend", 1, &big.url()),
        ],
    );
    let http = gw.http;
    let upload = |protocol, total: usize| async move {
        client::send(
            protocol,
            Method::POST,
            &format!("http://{http}/petstore/v1/pet"),
            &[("content-type", "application/octet-stream")],
            client::streamed(total as u64),
            Duration::from_secs(120),
        )
        .await
    };
    let download = |protocol, total: usize| async move {
        client::send(
            protocol,
            Method::GET,
            &format!("http://{http}/lb/who?n={total}"),
            &[],
            client::empty(),
            Duration::from_secs(120),
        )
        .await
    };
    for protocol in [Protocol::Http1, Protocol::H2c] {
        let reply = upload(protocol, 256 * 1024).await.unwrap();
        assert_eq!(reply.status, StatusCode::OK, "{protocol:?} warm-up upload");
        let reply = download(protocol, 256 * 1024).await.unwrap();
        assert_eq!(
            reply.body.len(),
            256 * 1024,
            "{protocol:?} warm-up download"
        );
    }
    let baseline = gw.memory_kb("VmHWM");
    for protocol in [Protocol::Http1, Protocol::H2c] {
        let reply = upload(protocol, TOTAL).await.unwrap();
        assert_eq!(reply.status, StatusCode::OK, "{protocol:?}");
        let echo = reply.json();
        assert_eq!(echo["body_bytes"], TOTAL, "{protocol:?}");
        assert_eq!(
            echo["body_checksum"],
            TOTAL as u64 * u64::from(b'z'),
            "{protocol:?}"
        );
        let reply = download(protocol, TOTAL).await.unwrap();
        assert_eq!(reply.status, StatusCode::OK, "{protocol:?}");
        assert_eq!(reply.body.len(), TOTAL, "{protocol:?}");
        assert!(reply.body.iter().all(|&b| b == b'x'), "{protocol:?}");
    }
    let peak = gw.memory_kb("VmHWM");
    assert!(
        peak < baseline + STREAMING_RSS_GROWTH_KB,
        "the gateway's peak RSS grew from {baseline} kB to {peak} kB while streaming 50 MB up and down over HTTP/1.1 and h2c (bound: {STREAMING_RSS_GROWTH_KB} kB)"
    );
}

/// How much the gateway's peak RSS may grow while 50 MB bodies stream through (issue 16's
/// "RSS growth < 5 MB").
const STREAMING_RSS_GROWTH_KB: u64 = 5 * 1024;

#[tokio::test(flavor = "multi_thread")]
async fn load_balances_round_robin_and_fails_over() {
    let (b1, b2) = (backend("b1").await, backend("b2").await);
    let dead = format!("http://127.0.0.1:{}", harness::closed_port());
    let petstore = backend("p").await;
    let gw = gateway_for(
        &petstore,
        &[
            override_arg("lbBackend", 0, &b1.url()),
            override_arg("lbBackend", 1, &b2.url()),
            override_arg("foBackend", 0, &dead),
            override_arg("foBackend", 1, &b2.url()),
        ],
    );
    let mut order = Vec::new();
    for _ in 0..6 {
        let reply = client::get(&format!("http://{}/lb/who", gw.http)).await;
        order.push(reply.header("x-backend").unwrap().to_string());
    }
    assert_eq!(order, ["b1", "b2", "b1", "b2", "b1", "b2"]);

    for _ in 0..3 {
        let reply = client::get(&format!("http://{}/fo/who", gw.http)).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.header("x-backend"), Some("b2"));
    }
    // A body that was never sent to the refused URL goes to the next one intact.
    let reply = client::send(
        Protocol::Http1,
        Method::POST,
        &format!("http://{}/fo/who", gw.http),
        &[],
        client::full("hello"),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert_eq!(reply.json()["body_bytes"], 5);
    assert_eq!(b1.request_count(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_upstream_is_502_and_slow_upstream_is_504() {
    let be = backend("b1").await;
    let slow = backend("slow").await;
    let dead = format!("http://127.0.0.1:{}", harness::closed_port());
    let gw = gateway_for(
        &be,
        &[
            override_arg("downBackend", 0, &dead),
            override_arg("slowBackend", 0, &slow.url()),
        ],
    );

    let started = Instant::now();
    let reply = client::get(&format!("http://{}/down/x", gw.http)).await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY);
    assert_eq!(reply.json()["fault"]["code"], 102503);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "a refused connection fails fast"
    );

    let started = Instant::now();
    let reply = client::get(&format!("http://{}/slow/delay/5000", gw.http)).await;
    let waited = started.elapsed();
    assert_eq!(reply.status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(reply.json()["fault"]["code"], 102504);
    assert!(
        waited >= Duration::from_millis(450) && waited < Duration::from_secs(3),
        "timed out after {waited:?} (endpoint timeout 500 ms)"
    );

    // Under the timeout, the same route answers.
    let reply = client::get(&format!("http://{}/slow/delay/10", gw.http)).await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
pub(crate) async fn sigterm_lets_the_request_in_flight_finish() {
    let be = backend("b1").await;
    let mut gw = gateway_for(&be, &[override_arg("waitBackend", 0, &be.url())]);
    let url = format!("http://{}/wait/delay/1500", gw.http);
    let in_flight = tokio::spawn(async move { client::get(&url).await });
    // Let the request reach the backend before stopping.
    let deadline = Instant::now() + Duration::from_secs(5);
    while be.request_count() == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(be.request_count(), 1);
    gw.terminate();
    gw.wait_for_log("SIGTERM received", Duration::from_secs(5))
        .expect("the gateway logs the signal");
    // New connections are refused while the old one drains.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        std::net::TcpStream::connect(gw.http).is_err(),
        "the listener is closed after SIGTERM"
    );
    let reply = in_flight.await.unwrap();
    assert_eq!(reply.status, StatusCode::OK);
    let status = gw
        .wait_exit(Duration::from_secs(10))
        .expect("the gateway exits after draining");
    assert!(status.success(), "{status}");
}

/// Kubernetes' termination sequence (issue 15): on SIGTERM the readiness probe (`/health`)
/// turns 503 while the listener still accepts and serves new requests for
/// `listener.drain_delay_seconds`; then the listener closes, the slow request in flight
/// completes, and the gateway exits 0.
#[tokio::test(flavor = "multi_thread")]
pub(crate) async fn sigterm_turns_readiness_off_then_serves_the_drain_delay_then_drains() {
    let be = backend("b1").await;
    let mut gw = gateway_for(
        &be,
        &[
            override_arg("waitBackend", 0, &be.url()),
            "--listener.drain_delay_seconds=2".into(),
        ],
    );
    let health = format!("http://{}/health", gw.http);
    assert_eq!(client::get(&health).await.status, StatusCode::OK);
    // A slow request: longer than the drain delay, so it is still in flight when the
    // listener closes.
    let url = format!("http://{}/wait/delay/3500", gw.http);
    let in_flight = tokio::spawn(async move { client::get(&url).await });
    let deadline = Instant::now() + Duration::from_secs(5);
    while be.request_count() == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(be.request_count(), 1);
    let signalled = Instant::now();
    gw.terminate();
    gw.wait_for_log("SIGTERM received", Duration::from_secs(5))
        .expect("the gateway logs the signal");
    // Readiness is off at once, on a new connection: the listener is still open.
    let reply = client::get(&health).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.json()["status"], "draining");
    let not_ready_after = signalled.elapsed();
    // New requests are still served during the delay.
    let reply = client::get(&format!("http://{}/wait/delay/10", gw.http)).await;
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "served during the drain delay"
    );
    // Then the listener closes (after the delay, not before).
    let closed_after = loop {
        if std::net::TcpStream::connect(gw.http).is_err() {
            break signalled.elapsed();
        }
        assert!(
            signalled.elapsed() < Duration::from_secs(6),
            "the listener still accepts 6 s after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        not_ready_after < closed_after,
        "readiness turned 503 ({not_ready_after:?}) before the listener closed ({closed_after:?})"
    );
    assert!(
        closed_after >= Duration::from_millis(1900),
        "the listener closed {closed_after:?} after SIGTERM, before the 2 s drain delay"
    );
    gw.wait_for_log("no new connections", Duration::from_secs(1))
        .expect("the gateway logs the close");
    let reply = in_flight.await.unwrap();
    assert_eq!(reply.status, StatusCode::OK, "the slow request completes");
    let status = gw
        .wait_exit(Duration::from_secs(10))
        .expect("the gateway exits after draining");
    assert!(status.success(), "{status}");
    eprintln!(
        "drain: readiness 503 after {not_ready_after:?}, listener closed after {closed_after:?}, exited after {:?}",
        signalled.elapsed()
    );
}

/// A second signal ends the drain delay early (an operator's second Ctrl-C, or a kubelet
/// that gives up): the gateway stops within a second instead of the 30 s delay.
#[tokio::test(flavor = "multi_thread")]
async fn a_second_signal_ends_the_drain_delay() {
    let be = backend("b1").await;
    let mut gw = gateway_for(&be, &["--listener.drain_delay_seconds=30".into()]);
    gw.terminate();
    gw.wait_for_log("still serving for 30 s", Duration::from_secs(5))
        .expect("the gateway logs the delay");
    let health = client::get(&format!("http://{}/health", gw.http)).await;
    assert_eq!(health.status, StatusCode::SERVICE_UNAVAILABLE);
    let again = Instant::now();
    gw.terminate();
    let status = gw
        .wait_exit(Duration::from_secs(5))
        .expect("the second signal ends the delay");
    assert!(status.success(), "{status}");
    assert!(
        again.elapsed() < Duration::from_secs(2),
        "{:?}",
        again.elapsed()
    );
    assert!(gw
        .logs()
        .iter()
        .any(|l| l.contains("received again: ending the drain delay")));
}

/// The names of a process's threads, sorted.
fn thread_names(pid: u32) -> Vec<String> {
    harness::threads(pid)
        .into_iter()
        .map(|(name, _)| name)
        .collect()
}

/// With one worker and no access log the gateway serves from a single thread, as an nginx
/// worker does (glibc then skips the cancellation bookkeeping around each system call): its
/// log's writer thread starts with the first line logged after start-up, which it writes.
#[tokio::test(flavor = "multi_thread")]
async fn one_worker_without_an_access_log_serves_from_a_single_thread() {
    if !std::path::Path::new("/proc/self/task").exists() {
        eprintln!("skipped: no /proc/<pid>/task on this system");
        return;
    }
    let be = backend("b1").await;
    let dead = format!("http://127.0.0.1:{}", harness::closed_port());
    let gw = gateway_for(
        &be,
        &[
            "--listener.worker_threads=1".to_string(),
            "--log.access_log=false".to_string(),
            override_arg("downBackend", 0, &dead),
        ],
    );
    for protocol in [Protocol::Http1, Protocol::H2c] {
        let reply = client::send(
            protocol,
            Method::GET,
            &format!("http://{}/petstore/v1/pet/1", gw.http),
            &[],
            client::empty(),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
        assert_eq!(reply.status, StatusCode::OK, "{protocol:?}");
    }
    let before = thread_names(gw.pid());
    assert_eq!(
        before.len(),
        1,
        "one thread while nothing is logged: {before:?}"
    );
    assert!(
        gw.logs().iter().any(|l| l.contains("ready in")),
        "the start-up lines are written without the writer thread"
    );

    // A refused upstream is logged: the first line since start-up starts the writer thread.
    let reply = client::get(&format!("http://{}/down/x", gw.http)).await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY);
    gw.wait_for_log("upstream request failed", Duration::from_secs(5))
        .expect("the warning is written by the started writer thread");
    let after = thread_names(gw.pid());
    assert_eq!(after.len(), 2, "{after:?}");
    assert!(after.iter().any(|name| name == "log-writer"), "{after:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn starts_quickly_and_idles_small() {
    let be = backend("b1").await;
    let gw = gateway_for(&be, &[]);
    let ready = gw.spawned.elapsed();
    // Generous bounds: these catch regressions by an order of magnitude, the figures are
    // measured by scripts/bench.
    assert!(ready < Duration::from_secs(5), "ready after {ready:?}");
    let rss = gw.memory_kb("VmRSS");
    assert!(rss < 64 * 1024, "idle RSS {rss} kB");
    let line = gw.wait_for_log("serving", Duration::from_secs(1)).unwrap();
    assert!(line.contains("6 API(s)"), "{line}");
}

#[tokio::test(flavor = "multi_thread")]
async fn https_endpoints_are_verified_against_the_configured_trust_store() {
    let certificate = backend::TestCertificate::new();
    let secure = backend::spawn_tls("secure", &certificate).await.unwrap();
    let plain = backend("p").await;
    let endpoint = override_arg("waitBackend", 0, &secure.https_url());
    // Trusting the backend's certificate: proxied, over pooled connections.
    let gw = gateway_for(
        &plain,
        &[
            endpoint.clone(),
            format!("--upstream.truststore={}", certificate.cert_path.display()),
        ],
    );
    for i in 0..3 {
        let reply = client::get(&format!("http://{}/wait/delay/0?i={i}", gw.http)).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.header("x-backend"), Some("secure"));
    }
    drop(gw);
    // With the system roots (the default), the self-signed certificate does not verify: 502.
    let gw = gateway_for(&plain, std::slice::from_ref(&endpoint));
    let reply = client::get(&format!("http://{}/wait/delay/0", gw.http)).await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY);
    assert_eq!(secure.request_count(), 3);
    assert!(
        gw.wait_for_log("certificate", Duration::from_secs(3))
            .is_some(),
        "the log says why: {:?}",
        gw.logs()
    );
    drop(gw);
    // The system roots come from where OpenSSL-based tools read them (`SSL_CERT_FILE` here),
    // loaded once when first needed: a certificate trusted there is verified, over pooled
    // connections, by the same default trust store.
    let trusted = certificate.cert_path.display().to_string();
    let gw = GatewayProcess::start_with_env(
        &routing_project().binary,
        &[override_arg("petstoreBackend", 0, &plain.url()), endpoint],
        true,
        &[("SSL_CERT_FILE", &trusted)],
    );
    for i in 0..2 {
        let reply = client::get(&format!("http://{}/wait/delay/0?system={i}", gw.http)).await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", gw.logs());
        assert_eq!(reply.header("x-backend"), Some("secure"));
    }
    assert_eq!(secure.request_count(), 5);
}

/// Starts the routing gateway with petstoreBackend pointing at a raw backend.
fn gateway_for_raw(backend: &RawBackend) -> GatewayProcess {
    GatewayProcess::start(
        &routing_project().binary,
        &[override_arg("petstoreBackend", 0, &backend.url())],
        false,
    )
}

const OK: &str = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

#[tokio::test(flavor = "multi_thread")]
pub(crate) async fn a_backend_that_closes_kept_alive_connections_gets_idempotent_requests_retried()
{
    // Issue 10 item 11. The backend answers completely, without `Connection: close`, and
    // closes the connection right away: a GET sent on the pooled connection must not be 502.
    let closing = spawn_raw(|_, _| RawAnswer::close(OK)).await.unwrap();
    let gw = gateway_for_raw(&closing);
    for i in 0..40 {
        let reply = client::get(&format!("http://{}/petstore/v1/pet/{i}", gw.http)).await;
        assert_eq!(reply.status, StatusCode::OK, "request {i}");
        assert_eq!(&reply.body[..], b"ok", "request {i}");
    }
    drop(gw);

    // Deterministic: every connection answers its first request and closes silently on
    // the second. An idempotent request without a body that meets the closed connection is
    // sent again once, on a fresh connection.
    let second_dies = spawn_raw(|_, seen| {
        if seen.nth_on_connection == 0 {
            RawAnswer::keep(OK)
        } else {
            RawAnswer::close("")
        }
    })
    .await
    .unwrap();
    let gw = gateway_for_raw(&second_dies);
    let url = |path: &str| format!("http://{}/petstore/v1{path}", gw.http);
    assert_eq!(client::get(&url("/pet/1")).await.status, StatusCode::OK);
    let reply = client::get(&url("/pet/2")).await;
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "GET retried on a fresh connection"
    );
    let seen = second_dies.seen();
    assert_eq!(seen.len(), 3, "{seen:#?}");
    assert_eq!((seen[2].connection, seen[2].nth_on_connection), (1, 0));
    assert!(gw
        .wait_for_log(
            "sending it again on a new connection",
            Duration::from_secs(3)
        )
        .is_some());

    // POST is not idempotent: never sent twice, 502. (The connection of the retry is not
    // pooled, so a GET opens the next one.)
    assert_eq!(client::get(&url("/pet/3")).await.status, StatusCode::OK);
    let reply = client::send(
        Protocol::Http1,
        Method::POST,
        &url("/pet"),
        &[],
        client::empty(),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY);
    let seen = second_dies.seen();
    assert_eq!(seen.len(), 5, "the POST was sent once: {seen:#?}");
    assert_eq!((seen[4].method(), seen[4].nth_on_connection), ("POST", 1));

    // DELETE is idempotent, but its body was already streamed: not sent twice either.
    assert_eq!(client::get(&url("/pet/5")).await.status, StatusCode::OK);
    let reply = client::send(
        Protocol::Http1,
        Method::DELETE,
        &url("/pet/4"),
        &[],
        client::full("hello"),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY);
    let seen = second_dies.seen();
    assert_eq!(seen.len(), 7, "the DELETE was sent once: {seen:#?}");
    assert_eq!((seen[6].method(), seen[6].nth_on_connection), ("DELETE", 1));
    assert_eq!(seen[6].body, b"hello");
}

#[tokio::test(flavor = "multi_thread")]
async fn bytes_after_a_response_without_body_never_reach_the_next_request() {
    // Issue 10 item 12: a 204, a 304 and a HEAD answer followed by stray bytes (at once, and
    // a moment later). The connection is never reused; the next request gets a clean answer.
    let stray = spawn_raw(|_, seen| match (seen.method(), seen.target()) {
        ("HEAD", _) => RawAnswer::keep("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"),
        (_, "/pet/nocontent") => {
            RawAnswer::keep("HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nhello")
        }
        (_, "/pet/notmodified") => RawAnswer::keep(
            "HTTP/1.1 304 Not Modified\r\nContent-Length: 42\r\nETag: \"a\"\r\n\r\n",
        )
        .then_after(
            Duration::from_millis(30),
            "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\ninjected",
        ),
        (_, "/pet/late") => {
            RawAnswer::keep("HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n")
                .then_after(Duration::from_millis(30), "5\r\nhello\r\n0\r\n\r\n")
        }
        _ => RawAnswer::keep(OK),
    })
    .await
    .unwrap();
    let gw = gateway_for_raw(&stray);
    let url = |path: &str| format!("http://{}/petstore/v1{path}", gw.http);
    let cases = [
        (Method::GET, "/pet/nocontent", StatusCode::NO_CONTENT),
        (Method::GET, "/pet/notmodified", StatusCode::NOT_MODIFIED),
        (Method::GET, "/pet/late", StatusCode::NO_CONTENT),
        (Method::HEAD, "/pet/1", StatusCode::OK),
    ];
    for (method, path, status) in cases {
        for round in 0..3 {
            let reply = client::send(
                Protocol::Http1,
                method.clone(),
                &url(path),
                &[],
                client::empty(),
                Duration::from_secs(10),
            )
            .await
            .unwrap();
            assert_eq!(reply.status, status, "{method} {path}");
            assert!(reply.body.is_empty(), "{method} {path}");
            let next = client::get(&url("/pet/1")).await;
            assert_eq!(
                (next.status, &next.body[..]),
                (StatusCode::OK, &b"ok"[..]),
                "the request after {method} {path} (round {round})"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
pub(crate) async fn every_response_framing_is_read_and_only_clean_connections_are_reused() {
    // Issue 16, the lean upstream client (bodiless idempotent requests to http:// endpoints):
    // chunked bodies with extensions and trailers, split across writes; interim answers;
    // a custom reason phrase; a body delimited by the close; stray bytes after a body;
    // conflicting lengths; a body cut off; a broken chunk size. A connection is reused
    // only after a cleanly ended body.
    const CHUNKED: &str = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
        5\r\nhello\r\n6;note=1\r\n world\r\n0\r\nx-sum: 1\r\n\r\n";
    let upstream = spawn_raw(|_, seen| match seen.target() {
        "/pet/chunked" => RawAnswer::keep(CHUNKED),
        "/pet/split" => {
            RawAnswer::keep("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel")
                .then_after(Duration::from_millis(30), "lo\r\n0\r\n\r\n")
        }
        "/pet/interim" => RawAnswer::keep(
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n\
             HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        ),
        "/pet/reason" => RawAnswer::keep("HTTP/1.1 200 Fine Thanks\r\nContent-Length: 2\r\n\r\nok"),
        "/pet/eof" => RawAnswer::close("HTTP/1.1 200 OK\r\n\r\nuntil the close"),
        "/pet/extra" => RawAnswer::keep(
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n\
             okHTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\ninjected",
        ),
        "/pet/twolengths" => {
            RawAnswer::keep("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok")
        }
        "/pet/cut" => RawAnswer::close("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"),
        "/pet/badchunk" => {
            RawAnswer::keep("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n")
        }
        _ => RawAnswer::keep(OK),
    })
    .await
    .unwrap();
    let gw = gateway_for_raw(&upstream);
    let url = |path: &str| format!("http://{}/petstore/v1{path}", gw.http);
    let fetch = |path: &'static str| {
        let url = url(path);
        async move {
            client::send(
                Protocol::Http1,
                Method::GET,
                &url,
                &[],
                client::empty(),
                Duration::from_secs(10),
            )
            .await
        }
    };
    // The connection of the request before the last one, and of the last one.
    let connections = || {
        let seen = upstream.seen();
        let [.., case, next] = &seen[..] else {
            panic!("two requests at least: {seen:#?}")
        };
        (case.connection, next.connection, next.nth_on_connection)
    };
    let next_is_clean = || async {
        let next = client::get(&url("/pet/1")).await;
        assert_eq!((next.status, &next.body[..]), (StatusCode::OK, &b"ok"[..]));
    };

    for (path, body) in [
        ("/pet/chunked", &b"hello world"[..]),
        ("/pet/split", b"hello"),
        ("/pet/interim", b"ok"),
    ] {
        let reply = fetch(path).await.unwrap();
        assert_eq!(
            (reply.status, &reply.body[..]),
            (StatusCode::OK, body),
            "{path}"
        );
        assert!(
            !reply.headers.contains_key("link"),
            "interim fields stay out"
        );
        next_is_clean().await;
        let (case, next, nth) = connections();
        assert!(case == next && nth > 0, "{path}: the connection is reused");
    }

    // The reason phrase reaches the client as the upstream wrote it.
    let mut raw_client = tokio::net::TcpStream::connect(gw.http).await.unwrap();
    use tokio::io::AsyncWriteExt;
    raw_client
        .write_all(b"GET /petstore/v1/pet/reason HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut received = Vec::new();
    read_until(&mut raw_client, &mut received, b"ok", 10).await;
    assert!(
        received.starts_with(b"HTTP/1.1 200 Fine Thanks\r\n"),
        "{}",
        String::from_utf8_lossy(&received)
    );
    drop(raw_client);

    // Delimited by the close, or followed by stray bytes: delivered, never reused.
    for (path, body) in [("/pet/eof", &b"until the close"[..]), ("/pet/extra", b"ok")] {
        let reply = fetch(path).await.unwrap();
        assert_eq!(
            (reply.status, &reply.body[..]),
            (StatusCode::OK, body),
            "{path}"
        );
        next_is_clean().await;
        let (case, next, nth) = connections();
        assert!(
            case != next && nth == 0,
            "{path}: a new connection after it"
        );
    }

    // Conflicting lengths: 502, as hyper's client answered. A body cut off or a broken chunk
    // size: the client's response breaks off. The next request is clean on a new connection.
    assert_eq!(
        fetch("/pet/twolengths").await.unwrap().status,
        StatusCode::BAD_GATEWAY
    );
    next_is_clean().await;
    for path in ["/pet/cut", "/pet/badchunk"] {
        assert!(fetch(path).await.is_err(), "{path}: the body breaks off");
        next_is_clean().await;
        let (case, next, nth) = connections();
        assert!(
            case != next && nth == 0,
            "{path}: a new connection after it"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_http_1_0_backend_does_not_downgrade_the_client() {
    // Issue 10 item 13: HTTP/1.0 answers, with and without Content-Length (the second
    // delimited by the close), to an HTTP/1.1 client sending two requests on one connection.
    let old = spawn_raw(|_, seen| {
        if seen.target().ends_with("/sized") {
            RawAnswer::close("HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nold")
        } else {
            RawAnswer::close("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nold")
        }
    })
    .await
    .unwrap();
    let gw = gateway_for_raw(&old);
    let two = "GET /petstore/v1/pet/sized HTTP/1.1\r\nHost: x\r\n\r\nGET /petstore/v1/pet/unsized HTTP/1.1\r\nHost: x\r\n\r\n";
    let reply = raw::exchange(
        gw.http,
        &[two.as_bytes()],
        Duration::ZERO,
        Duration::from_secs(2),
    )
    .await;
    assert_eq!(reply.statuses(), vec![200, 200], "{}", reply.text);
    assert!(!reply.text.contains("HTTP/1.0"), "{}", reply.text);
    assert_eq!(reply.text.matches("old").count(), 2, "{}", reply.text);
    assert!(
        !reply.closed,
        "the client's connection stays open: {}",
        reply.text
    );
}

#[tokio::test(flavor = "multi_thread")]
pub(crate) async fn upstream_connections_are_kept_alive_until_the_upstream_says_close() {
    // Issue 16, the gateway's own connection pool: sequential requests share one kept-alive
    // upstream connection (after a sized and after a chunked body); after a response with
    // `Connection: close` (the backend leaves the socket open) the next request opens a new
    // connection, with no failed attempt on the old one.
    let backend = spawn_raw(|_, seen| match seen.target() {
        t if t.ends_with("/close") => {
            RawAnswer::keep("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok")
        }
        t if t.ends_with("/chunked") => RawAnswer::keep(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
        ),
        _ => RawAnswer::keep(OK),
    })
    .await
    .unwrap();
    let gw = gateway_for_raw(&backend);
    let url = |path: &str| format!("http://{}/petstore/v1{path}", gw.http);
    for path in [
        "/pet/1",
        "/pet/chunked",
        "/pet/2",
        "/pet/close",
        "/pet/3",
        "/pet/4",
    ] {
        let reply = client::get(&url(path)).await;
        assert_eq!(
            (reply.status, &reply.body[..]),
            (StatusCode::OK, &b"ok"[..]),
            "{path}"
        );
    }
    let seen = backend.seen();
    let placed: Vec<(usize, usize)> = seen
        .iter()
        .map(|s| (s.connection, s.nth_on_connection))
        .collect();
    assert_eq!(
        placed,
        vec![(0, 0), (0, 1), (0, 2), (0, 3), (1, 0), (1, 1)],
        "{seen:#?}"
    );
    let logs = gw.logs().join("\n");
    assert!(!logs.contains("upstream request failed"), "{logs}");
}

/// An upstream for the upload tests, on its own loopback port: a request whose target holds
/// `early` is
/// answered `413` (body `full`) as soon as its head has been read, and its body is read
/// afterwards, keeping the connection; any other request is answered once its body has been
/// read (`got <bytes>`). Returns the address, the connections accepted and the body bytes
/// read after early answers.
async fn upload_backend() -> (
    SocketAddr,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("binding the upload backend");
    let addr = listener.local_addr().expect("its address");
    let connections = Arc::new(AtomicUsize::new(0));
    let drained = Arc::new(AtomicUsize::new(0));
    let (count, read_after) = (connections.clone(), drained.clone());
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            let read_after = read_after.clone();
            tokio::spawn(async move {
                let mut buf: Vec<u8> = Vec::new();
                let mut chunk = vec![0u8; 64 * 1024];
                loop {
                    let head_end = loop {
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                        match stream.read(&mut chunk).await {
                            Ok(n) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                            _ => return,
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
                    buf.drain(..head_end);
                    let length: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    let early = head.lines().next().is_some_and(|l| l.contains("early"));
                    if early {
                        let answer =
                            "HTTP/1.1 413 Payload Too Large\r\nContent-Length: 4\r\n\r\nfull";
                        if stream.write_all(answer.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                    while buf.len() < length {
                        match stream.read(&mut chunk).await {
                            Ok(n) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                            _ => return,
                        }
                        if early {
                            read_after.store(buf.len().min(length), Ordering::SeqCst);
                        }
                    }
                    buf.drain(..length);
                    if !early {
                        let text = format!("got {length}");
                        let answer = format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{text}",
                            text.len()
                        );
                        if stream.write_all(answer.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    (addr, connections, drained)
}

#[tokio::test(flavor = "multi_thread")]
pub(crate) async fn uploads_stream_with_100_continue_and_survive_an_early_answer() {
    // `Expect: 100-continue` is answered once the upstream connection pulls the body, which
    // then streams through; an upstream answering before it has read the upload still gets
    // all of it, and its connection is reused afterwards.
    use std::sync::atomic::Ordering;
    use tokio::io::AsyncWriteExt;

    let (addr, connections, drained) = upload_backend().await;
    let gw = GatewayProcess::start(
        &routing_project().binary,
        &[override_arg(
            "petstoreBackend",
            0,
            &format!("http://{addr}"),
        )],
        false,
    );
    let mut client = tokio::net::TcpStream::connect(gw.http)
        .await
        .expect("connecting");
    client
        .write_all(b"POST /petstore/v1/pet HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n")
        .await
        .unwrap();
    let mut received = Vec::new();
    read_until(
        &mut client,
        &mut received,
        b"HTTP/1.1 100 Continue\r\n\r\n",
        5,
    )
    .await;
    client.write_all(b"hello").await.unwrap();
    read_until(&mut client, &mut received, b"got 5", 5).await;
    let text = String::from_utf8_lossy(&received);
    assert!(text.contains("HTTP/1.1 200 OK"), "{text}");

    // The upstream answers 413 before reading an 8 MiB upload, then reads it all on the same
    // connection. The client gets the 413 while still sending; the upload still reaches the
    // upstream in full, and the connection is then reused (it went back to the pool once
    // its request had been sent).
    const TOTAL: usize = 8 << 20;
    let mut uploader = tokio::net::TcpStream::connect(gw.http)
        .await
        .expect("connecting");
    let head = format!(
        "POST /petstore/v1/pet?early=1 HTTP/1.1\r\nHost: x\r\nContent-Length: {TOTAL}\r\n\r\n"
    );
    uploader.write_all(head.as_bytes()).await.unwrap();
    let (mut reader, mut writer) = uploader.into_split();
    let sending = tokio::spawn(async move {
        let piece = vec![b'u'; 64 * 1024];
        for _ in 0..TOTAL / piece.len() {
            writer.write_all(&piece).await?;
        }
        Ok::<_, std::io::Error>(writer)
    });
    let mut early = Vec::new();
    read_until(&mut reader, &mut early, b"full", 10).await;
    let text = String::from_utf8_lossy(&early);
    assert!(text.starts_with("HTTP/1.1 413 "), "{text}");
    let _writer = tokio::time::timeout(Duration::from_secs(20), sending)
        .await
        .expect("the upload is sent within 20 s")
        .unwrap()
        .expect("the gateway reads the whole upload");
    let deadline = Instant::now() + Duration::from_secs(10);
    while drained.load(Ordering::SeqCst) < TOTAL && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        drained.load(Ordering::SeqCst),
        TOTAL,
        "the upstream read the whole upload"
    );
    let reply = client::get(&format!("http://{}/petstore/v1/pet/1", gw.http)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(&reply.body[..], b"got 0");
    assert_eq!(
        connections.load(Ordering::SeqCst),
        1,
        "one upstream connection served all three requests"
    );
}

/// An upstream answer's fields reach an HTTP/1.1 client in the bytes hyper writes from a
/// header map (names in lower case, values without the whitespace around them, a name's
/// values together at its first place), whether the lean server writes them as received
/// (issue 16, `proxy::field_lines`: one `Content-Length`, no hop-by-hop field, no name twice)
/// or from the map.
#[tokio::test(flavor = "multi_thread")]
async fn an_upstreams_fields_reach_the_client_as_hyper_writes_them() {
    let upstream = spawn_raw(|_, seen| match seen.target() {
        "/delay/lower" => {
            RawAnswer::keep("HTTP/1.1 200 OK\r\nx-backend: raw\r\ncontent-length: 2\r\n\r\nok")
        }
        "/delay/mixed" => RawAnswer::keep(
            "HTTP/1.1 200 OK\r\nX-Mixed-Case:  v1 \t\r\nContent-Type: text/plain\r\n\
             Content-Length: 2\r\nx-empty:\r\nDate: Thu, 03 Dec 2026 10:00:00 GMT\r\n\r\nok",
        ),
        "/delay/twice" => RawAnswer::keep(
            "HTTP/1.1 200 OK\r\nX-A: 1\r\nX-B: 2\r\nx-a: 3\r\nContent-Length: 2\r\n\r\nok",
        ),
        "/delay/hop" => RawAnswer::keep(
            "HTTP/1.1 200 OK\r\nConnection: x-secret\r\nX-Secret: 1\r\nKeep-Alive: timeout=5\r\n\
             X-Kept: 2\r\nContent-Length: 2\r\n\r\nok",
        ),
        _ => RawAnswer::keep(OK),
    })
    .await
    .unwrap();
    // An unsecured WSO2 route: its `Unauthenticated` tier's step adds `RateLimit` fields in the
    // response phase, after the upstream's, and reads none of them (the lean server may write
    // the upstream's as received).
    let gw = GatewayProcess::start(
        &routing_project().binary,
        &[override_arg("waitBackend", 0, &upstream.url())],
        false,
    );
    // The head's field lines as the client received them, but the gateway's `date`, and the
    // names alone of its `RateLimit` fields (their counts move).
    let fields = |path: &'static str| {
        let addr = gw.http;
        async move {
            use tokio::io::AsyncWriteExt;
            let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
            let request = format!("GET /wait{path} HTTP/1.1\r\nHost: x\r\n\r\n");
            client.write_all(request.as_bytes()).await.unwrap();
            let mut received = Vec::new();
            read_until(&mut client, &mut received, b"\r\n\r\nok", 10).await;
            let text = String::from_utf8_lossy(&received).into_owned();
            let head = text.split("\r\n\r\n").next().unwrap_or_default();
            let mut lines = head.split("\r\n");
            assert_eq!(lines.next(), Some("HTTP/1.1 200 OK"), "{text}");
            lines
                .filter(|line| !line.starts_with("date: ") || line.contains("2026 10:00"))
                .map(|line| match line.split_once(':') {
                    Some((name, _)) if name.starts_with("ratelimit") => name.to_string(),
                    _ => line.to_string(),
                })
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        fields("/delay/lower").await,
        [
            "x-backend: raw",
            "content-length: 2",
            "ratelimit",
            "ratelimit-policy"
        ]
    );
    assert_eq!(
        fields("/delay/mixed").await,
        [
            "x-mixed-case: v1",
            "content-type: text/plain",
            "content-length: 2",
            "x-empty: ",
            "date: Thu, 03 Dec 2026 10:00:00 GMT",
            "ratelimit",
            "ratelimit-policy",
        ]
    );
    // Through the map: a name's values together, hop-by-hop fields and those `Connection`
    // names removed.
    assert_eq!(
        fields("/delay/twice").await,
        [
            "x-a: 1",
            "x-a: 3",
            "x-b: 2",
            "content-length: 2",
            "ratelimit",
            "ratelimit-policy"
        ]
    );
    assert_eq!(
        fields("/delay/hop").await,
        [
            "x-kept: 2",
            "content-length: 2",
            "ratelimit",
            "ratelimit-policy"
        ]
    );
}

/// Reads `stream` into `received` until `needle` appears in it, waiting at most `seconds` for
/// each read; panics naming what had arrived if the stream closes first.
async fn read_until<R>(stream: &mut R, received: &mut Vec<u8>, needle: &[u8], seconds: u64)
where
    R: tokio::io::AsyncRead + Unpin,
{
    use tokio::io::AsyncReadExt;
    let mut buf = [0u8; 4096];
    while !received.windows(needle.len()).any(|w| w == needle) {
        let n = tokio::time::timeout(Duration::from_secs(seconds), stream.read(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("{:?} within {seconds} s", String::from_utf8_lossy(needle)))
            .unwrap();
        assert!(
            n > 0,
            "closed before {:?}: {:?}",
            String::from_utf8_lossy(needle),
            String::from_utf8_lossy(received)
        );
        received.extend_from_slice(buf.get(..n).unwrap_or_default());
    }
}
