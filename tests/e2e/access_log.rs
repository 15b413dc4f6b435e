//! The access log of a real gateway: JSON lines and their fields, the text form, the last
//! lines written on SIGTERM, `RUST_LOG`, and a standard output nobody reads (lines are dropped,
//! counted and reported; requests are still answered at once).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mgw_e2e::backend::{self, Backend};
use mgw_e2e::client;
use mgw_e2e::harness::GatewayProcess;

use crate::routing_project;

async fn backend() -> Backend {
    backend::spawn("logged", SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("starting a backend")
}

/// The JSON access-log lines among a gateway's output.
fn json_lines(lines: &[String]) -> Vec<serde_json::Value> {
    lines
        .iter()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

/// Waits (bounded) until `count` JSON lines satisfy `wanted`.
fn wait_for_json(
    gw: &GatewayProcess,
    count: usize,
    wanted: impl Fn(&serde_json::Value) -> bool,
) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let found: Vec<_> = json_lines(&gw.logs()).into_iter().filter(&wanted).collect();
        if found.len() >= count || Instant::now() > deadline {
            return found;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread")]
pub(crate) async fn json_lines_carry_the_fields_and_the_last_ones_survive_sigterm() {
    let be = backend().await;
    let mut gw = GatewayProcess::start(
        &routing_project().binary,
        &[
            format!("--petstoreBackend_prod_endpoint_0={}", be.url()),
            "--log.access_log_format=json".into(),
        ],
        false,
    );
    let base = format!("http://{}", gw.http);
    assert_eq!(
        client::get(&format!("{base}/petstore/v1/pet/42?x=%22q%22"))
            .await
            .status,
        200
    );
    assert_eq!(client::get(&format!("{base}/nowhere")).await.status, 404);
    assert_eq!(client::get(&format!("{base}/down/x")).await.status, 502);

    let proxied = wait_for_json(&gw, 1, |v| v["path"] == "/petstore/v1/pet/42?x=%22q%22");
    let v = proxied
        .first()
        .expect("a JSON line for the proxied request");
    assert_eq!(v["route"], "/petstore/v1/pet/{petId}", "{v}");
    assert_eq!(v["method"], "GET");
    assert_eq!(v["client"], "127.0.0.1");
    assert_eq!(v["status"], 200);
    assert_eq!(v["complete"], true);
    assert!(v["bytes_out"].as_u64().unwrap() > 0, "{v}");
    assert!(
        v["upstream"].as_str().unwrap().starts_with(&be.url()),
        "{v}"
    );
    let upstream_ms = v["upstream_ms"].as_f64().unwrap();
    assert!(v["total_ms"].as_f64().unwrap() >= upstream_ms, "{v}");
    let time = v["time"].as_str().unwrap();
    assert!(
        time.len() == 24 && time.ends_with('Z') && time.as_bytes()[10] == b'T',
        "RFC 3339 UTC with milliseconds: {time}"
    );
    for absent in ["error", "consumer"] {
        assert!(v.get(absent).is_none(), "{absent}: {v}");
    }
    // Every request has a W3C trace (the client's or a new one): 32 lower-case hex digits.
    let trace = v["trace_id"].as_str().unwrap_or_default();
    assert!(
        trace.len() == 32
            && trace
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "{v}"
    );
    let missing = wait_for_json(&gw, 1, |v| v["path"] == "/nowhere");
    assert_eq!(missing[0]["error"], "client", "{}", missing[0]);
    assert!(missing[0].get("route").is_none(), "{}", missing[0]);
    let down = wait_for_json(&gw, 1, |v| v["path"] == "/down/x");
    assert_eq!(down[0]["error"], "upstream", "{}", down[0]);
    assert_eq!(down[0]["route"], "/down/x", "{}", down[0]);

    // The lines of the last requests before a stop signal are written before the exit.
    const LAST: usize = 200;
    for i in 0..LAST {
        let reply = client::get(&format!("{base}/petstore/v1/pet/last-{i}")).await;
        assert_eq!(reply.status, 200);
    }
    gw.terminate();
    let status = gw.wait_exit(Duration::from_secs(20)).expect("exits");
    assert!(status.success(), "{status}");
    let last = wait_for_json(&gw, LAST, |v| {
        v["path"]
            .as_str()
            .is_some_and(|p| p.starts_with("/petstore/v1/pet/last-"))
    });
    assert_eq!(
        last.len(),
        LAST,
        "every line of the last requests is written"
    );
}

/// A request the lean HTTP/1.1 server hands to hyper (its body comes after the head's short
/// grace), after `GET`s that leave the upstream connection pooled, is logged as what it was:
/// complete, with the upstream's latency. (The quickstart's `POST` after two `GET`s was once
/// logged `aborted` with `upstream_ms` 0.00 when nested poll clocks shared a reading; this
/// raw-socket sequence did not show that one: docs/benchmarks.md, "fourteenth pass".)
#[tokio::test(flavor = "multi_thread")]
async fn a_request_hyper_serves_is_logged_complete_with_its_upstream_latency() {
    let be = backend().await;
    let gw = GatewayProcess::start(
        &routing_project().binary,
        &[
            format!("--petstoreBackend_prod_endpoint_0={}", be.url()),
            "--log.access_log_format=json".into(),
        ],
        false,
    );
    let base = format!("http://{}", gw.http);
    for round in 0..3 {
        for path in [
            "/petstore/v1/pet/42",
            "/petstore/v1/pet/findByStatus?status=sold",
        ] {
            assert_eq!(client::get(&format!("{base}{path}")).await.status, 200);
        }
        let mut stream = TcpStream::connect(gw.http).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let body = format!("{{\"round\":{round}}}");
        write!(
            stream,
            "POST /petstore/v1/pet HTTP/1.1\r\nHost: gw\r\ncontent-type: application/json\r\n\
             content-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        )
        .unwrap();
        // Past the lean server's wait for a body (5 ms): hyper serves the request.
        std::thread::sleep(Duration::from_millis(50));
        stream.write_all(body.as_bytes()).unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
        assert!(
            answer.contains(&format!("\"body_bytes\":{}", body.len())),
            "{answer}"
        );
    }
    let posts = wait_for_json(&gw, 3, |v| v["method"] == "POST");
    assert_eq!(posts.len(), 3, "{posts:?}");
    for v in &posts {
        assert_eq!(v["status"], 200, "{v}");
        assert_eq!(v["complete"], true, "{v}");
        assert!(v["upstream_ms"].as_f64().unwrap() > 0.0, "{v}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn text_lines_keep_their_form_and_rust_log_replaces_the_level() {
    let binary = &routing_project().binary;
    // log.level hides the access log; RUST_LOG, set, replaces log.level.
    let gw = GatewayProcess::start_with_env(
        binary,
        &["--log.level=info,access=off".to_string()],
        false,
        &[("RUST_LOG", "info")],
    );
    let reply = client::get(&format!("http://{}/health", gw.http)).await;
    assert_eq!(reply.status, 200);
    let line = gw
        .wait_for_log(" GET /health ", Duration::from_secs(10))
        .expect("an access line under RUST_LOG=info");
    // `<RFC 3339 time with microseconds>  INFO access: <client> <method> <path> <status> ...`
    let (time, rest) = line.split_once("  INFO access: ").expect("the text form");
    assert!(time.len() == 27 && time.ends_with('Z'), "{line}");
    assert!(
        rest.starts_with("127.0.0.1 GET /health 200 complete bytes_out=")
            && rest.contains(" upstream=- upstream_ms=0.00 total_ms=")
            && rest.contains(" consumer=- trace=")
            && rest
                .rsplit_once(" trace=")
                .is_some_and(|(_, id)| id.len() == 32),
        "{line}"
    );
    drop(gw);

    // Without RUST_LOG the configured level holds: no access line.
    let gw = GatewayProcess::start(binary, &["--log.level=info,access=off".to_string()], false);
    client::get(&format!("http://{}/health", gw.http)).await;
    client::get(&format!("http://{}/health", gw.http)).await;
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !gw.logs().iter().any(|l| l.contains(" GET /health ")),
        "{:?}",
        gw.logs()
    );

    // An unusable RUST_LOG stops the start with a message naming it.
    let out = Command::new(binary)
        .args(["--listener.http_port=0", "--listener.https_port=0"])
        .env("RUST_LOG", "info,loud=[")
        .output()
        .expect("running the gateway");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("RUST_LOG=\"info,loud=[\" is not a list of log directives"),
        "{stderr}"
    );
}

/// Kills the gateway if a test fails before it exits.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_full_queue_drops_and_reports_instead_of_blocking_requests() {
    const REQUESTS: usize = 1500;
    let child = Command::new(&routing_project().binary)
        .args([
            "--listener.host=127.0.0.1",
            "--listener.http_port=0",
            "--listener.https_enabled=false",
            "--log.access_log_format=json",
            "--log.access_log_queue=16",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting the gateway");
    let mut child = Killed(child);
    let mut stdout = BufReader::new(child.0.stdout.take().expect("stdout"));
    // Read only until the gateway is ready; from then on nobody reads its standard output.
    let mut addr = None;
    let mut line = String::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        line.clear();
        if stdout.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        if let Some(found) = line.split("listener is active on http://").nth(1) {
            addr = found.trim().parse::<SocketAddr>().ok();
        }
        if line.contains("; ready in ") {
            break;
        }
    }
    let addr = addr.expect("the gateway's HTTP address");

    // Pipelined requests on one connection, answered while the log's pipe is full.
    let started = Instant::now();
    let mut conn = TcpStream::connect(addr).expect("connecting");
    conn.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let request = b"GET /health HTTP/1.1\r\nHost: gw\r\n\r\n";
    let all: Vec<u8> = request.repeat(REQUESTS);
    conn.write_all(&all).expect("sending");
    let mut received = Vec::new();
    let mut buf = [0u8; 65536];
    let answered = |r: &[u8]| r.windows(15).filter(|w| w == b"HTTP/1.1 200 OK").count();
    while answered(&received) < REQUESTS {
        let n = conn.read(&mut buf).expect("answers keep coming");
        assert!(n > 0, "the gateway closed after {}", answered(&received));
        received.extend_from_slice(&buf[..n]);
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed < Duration::from_secs(10),
        "{REQUESTS} requests took {elapsed:?} with the log blocked"
    );

    // Now read everything, stop the gateway, and account for every request.
    let reader = std::thread::spawn(move || {
        let mut rest = String::new();
        let _ = stdout.read_to_string(&mut rest);
        rest
    });
    let status = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.0.try_wait().ok().flatten().is_none() {
        assert!(Instant::now() < deadline, "the gateway did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = reader.join().expect("reader");
    let lines: Vec<String> = output.lines().map(str::to_string).collect();
    let written = json_lines(&lines)
        .iter()
        .filter(|v| v["path"] == "/health")
        .count();
    let reports: Vec<&String> = lines
        .iter()
        .filter(|l| l.contains("dropped because the queue was full"))
        .collect();
    let dropped: usize = reports
        .iter()
        .map(|l| {
            let count = l
                .split("access log: ")
                .nth(1)
                .and_then(|r| r.split(' ').next());
            count.and_then(|c| c.parse::<usize>().ok()).expect(l)
        })
        .sum();
    assert!(!reports.is_empty() && dropped > 0, "{output}");
    assert!(
        reports[0].contains("WARN") && reports[0].contains("log.access_log_queue = 16"),
        "{}",
        reports[0]
    );
    assert_eq!(written + dropped, REQUESTS, "{output}");
}
