//! The thread-per-core runtime (`listener.runtime = "thread-per-core"`): the tests of the
//! server that matter most (proxying, keep-alive, TLS, h2, the drain on SIGTERM, the access
//! log's last lines, the connection limit, slow clients, metrics) run again with the mode on,
//! plus what only this mode has (every worker serving). The whole e2e suite runs in the mode
//! with `MGW_E2E_GATEWAY_ARGS` ([`harness::GATEWAY_ARGS_ENV`]).
//!
//! The keep-alive tests count upstream connections: with two workers each keeps its own idle
//! connections and the kernel spreads client connections over them, so they run with one
//! worker (still the mode's own sockets, runtime and pool).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use http::StatusCode;
use mgw_e2e::backend;
use mgw_e2e::client;
use mgw_e2e::harness::{self, GatewayProcess, THREAD_PER_CORE};

use crate::{access_log, hardening, metrics, proxy, routing_project};

/// The thread-per-core runtime with one worker.
const ONE_WORKER: &[&str] = &[
    "--listener.runtime=thread-per-core",
    "--listener.worker_threads=1",
];

#[test]
fn proxies_with_forwarding_headers() {
    harness::with_gateway_args(
        THREAD_PER_CORE,
        proxy::proxies_path_parameters_query_strings_and_forwarding_headers,
    );
}

#[test]
fn speaks_h2_over_tls_and_h2c() {
    harness::with_gateway_args(
        THREAD_PER_CORE,
        proxy::speaks_h2_over_tls_and_h2c_with_prior_knowledge,
    );
}

#[test]
fn streams_50_mb_in_constant_memory() {
    harness::with_gateway_args(
        THREAD_PER_CORE,
        proxy::streams_50_mb_bodies_both_ways_in_constant_memory,
    );
}

#[test]
fn sigterm_lets_the_request_in_flight_finish() {
    harness::with_gateway_args(
        THREAD_PER_CORE,
        proxy::sigterm_lets_the_request_in_flight_finish,
    );
}

#[test]
fn sigterm_serves_the_drain_delay_then_drains() {
    harness::with_gateway_args(
        THREAD_PER_CORE,
        proxy::sigterm_turns_readiness_off_then_serves_the_drain_delay_then_drains,
    );
}

#[test]
fn the_last_access_log_lines_survive_sigterm() {
    harness::with_gateway_args(
        THREAD_PER_CORE,
        access_log::json_lines_carry_the_fields_and_the_last_ones_survive_sigterm,
    );
}

#[test]
fn kept_alive_connections_closed_by_the_upstream_are_retried() {
    harness::with_gateway_args(
        ONE_WORKER,
        proxy::a_backend_that_closes_kept_alive_connections_gets_idempotent_requests_retried,
    );
}

#[test]
fn every_response_framing_is_read_and_only_clean_connections_are_reused() {
    harness::with_gateway_args(
        ONE_WORKER,
        proxy::every_response_framing_is_read_and_only_clean_connections_are_reused,
    );
}

#[test]
fn upstream_connections_are_kept_alive_until_the_upstream_says_close() {
    harness::with_gateway_args(
        ONE_WORKER,
        proxy::upstream_connections_are_kept_alive_until_the_upstream_says_close,
    );
}

#[test]
fn uploads_stream_with_100_continue_and_survive_an_early_answer() {
    harness::with_gateway_args(
        ONE_WORKER,
        proxy::uploads_stream_with_100_continue_and_survive_an_early_answer,
    );
}

#[test]
fn the_connection_cap_is_one_limit_for_all_workers() {
    harness::with_gateway_args(
        THREAD_PER_CORE,
        hardening::the_connection_cap_holds_and_is_logged,
    );
}

#[test]
fn slow_clients_are_cut_off_while_others_are_served() {
    harness::with_gateway_args(
        THREAD_PER_CORE,
        hardening::slow_clients_are_cut_off_while_others_are_served,
    );
}

#[test]
fn connections_that_never_say_their_protocol_are_cut_off() {
    harness::with_gateway_args(
        THREAD_PER_CORE,
        hardening::connections_that_never_say_their_protocol_are_cut_off,
    );
}

#[test]
fn idle_http2_connections_are_told_to_go_away() {
    harness::with_gateway_args(
        THREAD_PER_CORE,
        hardening::idle_http2_connections_are_told_to_go_away,
    );
}

#[test]
fn h2_rapid_reset_is_cut_short() {
    harness::with_gateway_args(THREAD_PER_CORE, hardening::h2_rapid_reset_is_cut_short);
}

#[test]
fn after_alpn_h2_the_tls_connection_speaks_only_http2() {
    harness::with_gateway_args(
        THREAD_PER_CORE,
        hardening::after_alpn_h2_the_tls_connection_speaks_only_http2,
    );
}

#[test]
fn metrics_count_requests_and_sum_the_in_flight_gauge() {
    harness::with_gateway_args(
        THREAD_PER_CORE,
        metrics::requests_errors_and_auth_are_counted_by_route,
    );
}

/// Time a thread has run on a CPU, in nanoseconds (`/proc/<pid>/task/<tid>/schedstat`).
fn cpu_ns(task: &std::path::Path) -> u64 {
    std::fs::read_to_string(task.join("schedstat"))
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// The gateway's worker threads (named `mgw-worker-<i>`), by name.
fn workers(pid: u32) -> Vec<(String, std::path::PathBuf)> {
    harness::threads(pid)
        .into_iter()
        .filter(|(name, _)| name.starts_with("mgw-worker-"))
        .collect()
}

/// Both workers listen on the one port and both serve: the kernel spreads new connections
/// over their sockets.
#[tokio::test(flavor = "multi_thread")]
async fn every_worker_serves_connections() {
    if !std::path::Path::new("/proc/self/task").exists() {
        eprintln!("skipped: no /proc (the worker threads are found there)");
        return;
    }
    let backend = backend::spawn("tpc", SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("starting a backend");
    let args: Vec<String> = THREAD_PER_CORE
        .iter()
        .map(|a| a.to_string())
        .chain([format!(
            "--petstoreBackend_prod_endpoint_0={}",
            backend.url()
        )])
        .collect();
    let gw = GatewayProcess::start(&routing_project().binary, &args, false);
    assert!(
        gw.logs()
            .iter()
            .any(|l| l.contains("on 2 thread-per-core worker(s); ready in")),
        "{:#?}",
        gw.logs()
    );
    // A thread names itself as it starts running (the name the kernel shows is set from inside
    // the new thread), which may come just after the gateway says it is ready: its sockets are
    // bound and listening before the workers start. Wait a bounded time for both names.
    let deadline = Instant::now() + Duration::from_secs(5);
    let threads = loop {
        let threads = workers(gw.pid());
        if threads.len() >= 2 || Instant::now() > deadline {
            break threads;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let names: Vec<&str> = threads.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["mgw-worker-0", "mgw-worker-1"]);
    let before: Vec<u64> = threads.iter().map(|(_, t)| cpu_ns(t)).collect();
    // 40 connections, one request each: all on one socket has a chance of 2^-39.
    for i in 0..40 {
        let reply = client::get(&format!("http://{}/petstore/v1/pet/{i}", gw.http)).await;
        assert_eq!(reply.status, StatusCode::OK);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let after: Vec<u64> = threads.iter().map(|(_, t)| cpu_ns(t)).collect();
    for ((name, _), (before, after)) in threads.iter().zip(before.iter().zip(&after)) {
        assert!(
            after > before,
            "{name} served nothing: {before} -> {after} ns"
        );
    }
    assert_eq!(backend.request_count(), 40);
}

/// The CPUs in a `Cpus_allowed_list` line's form (`0-3,6`), in order.
fn cpu_list(text: &str) -> Vec<usize> {
    let mut cpus = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        let (first, last) = part.split_once('-').unwrap_or((part, part));
        let (Ok(first), Ok(last)) = (first.parse::<usize>(), last.parse::<usize>()) else {
            panic!("not a CPU list: {text:?}");
        };
        cpus.extend(first..=last);
    }
    cpus
}

/// The CPUs a thread (or process) may run on, from the `Cpus_allowed_list` of its `status`.
fn cpus_allowed(status: &std::path::Path) -> Vec<usize> {
    let text = std::fs::read_to_string(status).unwrap_or_default();
    text.lines()
        .find_map(|line| line.strip_prefix("Cpus_allowed_list:"))
        .map(cpu_list)
        .unwrap_or_default()
}

/// `listener.pin_workers = true`: each worker may run on one CPU, a different one each, taken
/// from the CPUs the process may use; the control thread stays unpinned. With more workers
/// than CPUs the gateway refuses to start and says what to change; with the work-stealing
/// runtime the setting is refused too.
#[tokio::test(flavor = "multi_thread")]
async fn pinned_workers_each_run_on_a_cpu_of_their_own() {
    if !std::path::Path::new("/proc/self/task").exists() {
        eprintln!("skipped: no /proc (the worker threads' CPUs are read there)");
        return;
    }
    let ours = cpus_allowed(std::path::Path::new("/proc/self/status"));
    assert!(
        !ours.is_empty(),
        "no Cpus_allowed_list in /proc/self/status"
    );
    let refused = |args: &[String]| {
        let child = std::process::Command::new(&routing_project().binary)
            .args([
                "--listener.http_port=0",
                "--listener.https_port=0",
                "--metrics.port=0",
            ])
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("starting the gateway");
        let (status, stderr) = harness::wait_for_refusal(child, Duration::from_secs(20));
        assert!(!status.success(), "{stderr}");
        stderr
    };
    // One worker more than this process has CPUs.
    let stderr = refused(&[
        "--listener.runtime=thread-per-core".to_string(),
        format!("--listener.worker_threads={}", ours.len() + 1),
        "--listener.pin_workers=true".to_string(),
    ]);
    assert!(
        stderr.contains(&format!("may run on {} CPU(s)", ours.len()))
            && stderr.contains(&format!(
                "set listener.worker_threads to {} or fewer",
                ours.len()
            )),
        "{stderr}"
    );
    let stderr = refused(&["--listener.pin_workers=true".to_string()]);
    assert!(
        stderr.contains("listener.pin_workers = true needs listener.runtime = \"thread-per-core\""),
        "{stderr}"
    );
    if ours.len() < 2 {
        eprintln!("pinning two workers skipped: this process may run on one CPU only");
        return;
    }

    let backend = backend::spawn("pinned", SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("starting a backend");
    let args: Vec<String> = THREAD_PER_CORE
        .iter()
        .map(|a| a.to_string())
        .chain([
            "--listener.pin_workers=true".to_string(),
            format!("--petstoreBackend_prod_endpoint_0={}", backend.url()),
        ])
        .collect();
    let gw = GatewayProcess::start(&routing_project().binary, &args, false);
    let pinned_to = format!("pinned to CPU(s) {},{}", ours[0], ours[1]);
    assert!(
        gw.logs().iter().any(|l| l.contains(&pinned_to)),
        "{pinned_to:?} not logged: {:#?}",
        gw.logs()
    );
    // Each worker pins itself as it starts, which may come just after the gateway says it is
    // ready: wait a bounded time for both to run on one CPU.
    let deadline = Instant::now() + Duration::from_secs(5);
    let pins = loop {
        let pins: Vec<(String, Vec<usize>)> = workers(gw.pid())
            .into_iter()
            .map(|(name, task)| (name, cpus_allowed(&task.join("status"))))
            .collect();
        let done = pins.len() == 2 && pins.iter().all(|(_, cpus)| cpus.len() == 1);
        if done || Instant::now() > deadline {
            break pins;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(
        pins,
        [
            ("mgw-worker-0".to_string(), vec![ours[0]]),
            ("mgw-worker-1".to_string(), vec![ours[1]]),
        ]
    );
    // The main (control) thread keeps the process's CPUs.
    let main = cpus_allowed(std::path::Path::new(&format!("/proc/{}/status", gw.pid())));
    assert_eq!(main, ours);
    for i in 0..4 {
        let reply = client::get(&format!("http://{}/petstore/v1/pet/{i}", gw.http)).await;
        assert_eq!(reply.status, StatusCode::OK);
    }
    assert_eq!(backend.request_count(), 4);
}
