//! W3C trace context through a built gateway: the backend sees the client's trace continued
//! by the gateway's own span (or a new trace), the access log shows the trace id.

use std::net::SocketAddr;
use std::time::Duration;

use http::{Method, StatusCode};
use mgw_e2e::backend;
use mgw_e2e::client::{self, Protocol};
use mgw_e2e::harness::GatewayProcess;

use crate::routing_project;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN: &str = "00f067aa0ba902b7";

/// Sends `GET /petstore/v1/pet/<pet>` with `headers` through a gateway started with `args`;
/// returns what the backend received as `traceparent` and `tracestate`, and the access-log
/// line of the request.
async fn traced(
    gw: &GatewayProcess,
    pet: &str,
    headers: &[(&str, &str)],
) -> (Option<String>, Option<String>, String) {
    let reply = client::send(
        Protocol::Http1,
        Method::GET,
        &format!("http://{}/petstore/v1/pet/{pet}", gw.http),
        headers,
        client::empty(),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert_eq!(reply.status, StatusCode::OK);
    let seen = &reply.json()["headers"];
    let header = |name: &str| seen.get(name).and_then(|v| v.as_str()).map(str::to_string);
    let line = gw
        .wait_for_log(
            &format!("GET /petstore/v1/pet/{pet} "),
            Duration::from_secs(5),
        )
        .expect("an access-log line");
    (header("traceparent"), header("tracestate"), line)
}

/// The fields of a version-00 `traceparent` the gateway sent: trace id, parent id, flags.
fn fields(traceparent: &str) -> (String, String, String) {
    let parts: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(parts.len(), 4, "{traceparent}");
    assert_eq!(parts[0], "00", "{traceparent}");
    assert_eq!(parts[1].len(), 32, "{traceparent}");
    assert_eq!(parts[2].len(), 16, "{traceparent}");
    for part in &parts {
        assert!(
            part.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
            "{traceparent}"
        );
    }
    assert_ne!(parts[1], "0".repeat(32));
    assert_ne!(parts[2], "0".repeat(16));
    (parts[1].into(), parts[2].into(), parts[3].into())
}

fn start(backend: &backend::Backend, extra: &[&str]) -> GatewayProcess {
    let mut args = vec![format!(
        "--petstoreBackend_prod_endpoint_0={}",
        backend.url()
    )];
    args.extend(extra.iter().map(|a| a.to_string()));
    GatewayProcess::start(&routing_project().binary, &args, true)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_gateway_is_a_hop_of_the_clients_trace_or_starts_one() {
    let be = backend::spawn("b1", SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let gw = start(&be, &[]);

    // A client's sampled trace: same trace id, the gateway's span as the parent, tracestate kept.
    let client = format!("00-{TRACE_ID}-{CLIENT_SPAN}-01");
    let (parent, state, line) = traced(
        &gw,
        "1",
        &[
            ("traceparent", &client),
            ("tracestate", "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"),
        ],
    )
    .await;
    let (trace, span, flags) = fields(&parent.expect("traceparent upstream"));
    assert_eq!(trace, TRACE_ID);
    assert_ne!(
        span, CLIENT_SPAN,
        "the upstream's parent is the gateway's span"
    );
    assert_eq!(flags, "01");
    assert_eq!(
        state.as_deref(),
        Some("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE")
    );
    assert!(line.ends_with(&format!(" trace={TRACE_ID}")), "{line}");

    // Unsampled stays unsampled.
    let client = format!("00-{TRACE_ID}-{CLIENT_SPAN}-00");
    let (parent, _, _) = traced(&gw, "2", &[("traceparent", &client)]).await;
    assert_eq!(fields(&parent.unwrap()).2, "00");

    // No traceparent: a new sampled trace (sample_ratio defaults to 1), logged.
    let (parent, state, line) = traced(&gw, "3", &[]).await;
    let (trace, _, flags) = fields(&parent.unwrap());
    assert_eq!(flags, "01");
    assert_eq!(state, None);
    assert!(line.ends_with(&format!(" trace={trace}")), "{line}");

    // Malformed (upper-case hex, version ff, all-zero id, garbage): replaced by a new trace,
    // its tracestate dropped, and the request served as any other.
    for bad in [
        format!("00-{}-{CLIENT_SPAN}-01", TRACE_ID.to_uppercase()),
        format!("ff-{TRACE_ID}-{CLIENT_SPAN}-01"),
        format!("00-{}-{CLIENT_SPAN}-01", "0".repeat(32)),
        format!("00-{TRACE_ID}-{CLIENT_SPAN}-01-extra"),
        "garbage".to_string(),
    ] {
        let (parent, state, line) =
            traced(&gw, "4", &[("traceparent", &bad), ("tracestate", "a=1")]).await;
        let (trace, _, _) = fields(&parent.unwrap());
        assert_ne!(trace, TRACE_ID, "{bad}");
        assert_eq!(state, None, "{bad}");
        assert!(!line.contains(TRACE_ID), "{line}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn sample_ratio_and_propagate_settings_apply() {
    let be = backend::spawn("b1", SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let gw = start(&be, &["--tracing.sample_ratio=0"]);
    let (parent, _, _) = traced(&gw, "1", &[]).await;
    assert_eq!(
        fields(&parent.unwrap()).2,
        "00",
        "new traces are not sampled"
    );
    // A client's decision is kept whatever the ratio.
    let client = format!("00-{TRACE_ID}-{CLIENT_SPAN}-01");
    let (parent, _, _) = traced(&gw, "2", &[("traceparent", &client)]).await;
    assert_eq!(fields(&parent.unwrap()).2, "01");
    drop(gw);

    // Off: the gateway is not a hop; the client's headers pass as they came, no trace logged.
    let gw = start(&be, &["--tracing.propagate=false"]);
    let odd = "00-not-a-trace";
    let (parent, state, line) =
        traced(&gw, "3", &[("traceparent", odd), ("tracestate", "Bad")]).await;
    assert_eq!(parent.as_deref(), Some(odd));
    assert_eq!(state.as_deref(), Some("Bad"));
    assert!(line.ends_with(" trace=-"), "{line}");
}
