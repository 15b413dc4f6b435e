//! The proxy core as a security boundary: framing, limits, path normalisation, slow and
//! idle clients, connection caps. Raw bytes on real sockets against the real binary, with
//! assertions on what the upstream saw.

use std::net::SocketAddr;
use std::time::Duration;

use http::{Method, StatusCode};
use mgw_e2e::backend::{self, Backend};
use mgw_e2e::client::{self, Protocol};
use mgw_e2e::h2raw;
use mgw_e2e::harness::GatewayProcess;
use mgw_e2e::raw;
use mgw_e2e::raw_backend::{spawn_raw, RawAnswer};

use crate::routing_project;

async fn setup(extra: &[&str]) -> (Backend, GatewayProcess) {
    let be = backend::spawn("hb", SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let mut args = vec![format!("--petstoreBackend_prod_endpoint_0={}", be.url())];
    args.extend(extra.iter().map(|s| s.to_string()));
    let gw = GatewayProcess::start(&routing_project().binary, &args, false);
    (be, gw)
}

const SMUGGLED: &str = "GET /petstore/v1/pet/2 HTTP/1.1\r\nHost: x\r\n\r\n";

#[tokio::test(flavor = "multi_thread")]
async fn ambiguous_framing_is_rejected_before_the_upstream() {
    let (be, gw) = setup(&[]).await;
    let cases: &[(&str, String)] = &[
        ("two different Content-Lengths", format!("POST /petstore/v1/pet HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello{SMUGGLED}")),
        ("a signed Content-Length", format!("POST /petstore/v1/pet HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\nhello{SMUGGLED}")),
        ("an unknown transfer coding", format!("POST /petstore/v1/pet HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n{SMUGGLED}")),
        ("chunked not last", format!("POST /petstore/v1/pet HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n5\r\nhello\r\n0\r\n\r\n{SMUGGLED}")),
        ("a coding before chunked", format!("POST /petstore/v1/pet HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n{SMUGGLED}")),
        ("two Transfer-Encoding headers", format!("POST /petstore/v1/pet HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n{SMUGGLED}")),
        ("a space before the colon", format!("POST /petstore/v1/pet HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n{SMUGGLED}")),
        ("an obs-folded header", format!("GET /petstore/v1/pet/1 HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n b\r\n\r\n{SMUGGLED}")),
    ];
    for (case, bytes) in cases {
        let reply = raw::exchange(
            gw.http,
            &[bytes.as_bytes()],
            Duration::ZERO,
            Duration::from_secs(5),
        )
        .await;
        assert_eq!(
            reply.statuses(),
            vec![400],
            "{case}: exactly one 400, nothing smuggled behind it:\n{}",
            reply.text
        );
        assert!(reply.closed, "{case}: the connection is closed");
    }
    assert_eq!(
        be.request_count(),
        0,
        "no rejected request reached the upstream"
    );

    // An HTTP/1.1 request without Host is refused (RFC 9112 §3.2), as Node (and so Express
    // Gateway) does. Found by scripts/eg-diff.
    let reply = raw::exchange(
        gw.http,
        &[b"GET /petstore/v1/pet/1 HTTP/1.1\r\nConnection: close\r\n\r\n"],
        Duration::ZERO,
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(reply.statuses(), vec![400], "{}", reply.text);
    assert_eq!(be.request_count(), 0);

    // Methods are case-sensitive: `get` is not GET, so it is not allowed on the resource.
    let reply = raw::exchange(
        gw.http,
        &[b"get /petstore/v1/pet/1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"],
        Duration::ZERO,
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(reply.statuses(), vec![405], "{}", reply.text);
    assert_eq!(be.request_count(), 0);

    // Content-Length and Transfer-Encoding together: the chunked framing wins (RFC 9112 §6.3),
    // Content-Length is dropped, and the connection is closed after the response, so the
    // bytes behind it are never read as a request.
    let reply = raw::exchange(
        gw.http,
        &[format!("POST /petstore/v1/pet HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n{SMUGGLED}").as_bytes()],
        Duration::ZERO,
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(reply.statuses(), vec![200], "{}", reply.text);
    assert!(reply.closed);
    assert!(
        reply.text.contains("\"body_bytes\":5"),
        "the upstream got the chunked body: {}",
        reply.text
    );
    assert!(
        !reply.text.contains("content-length\":\"3"),
        "{}",
        reply.text
    );
    assert_eq!(be.request_count(), 1);

    // Broken chunk syntax mid-body: the upstream never sees a complete request, and the
    // pipelined request behind it is not served.
    let reply = raw::exchange(
        gw.http,
        &[format!("POST /petstore/v1/pet HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n{SMUGGLED}").as_bytes()],
        Duration::ZERO,
        Duration::from_secs(5),
    )
    .await;
    assert!(reply.statuses().iter().all(|s| *s != 200), "{}", reply.text);
    assert!(reply.closed);
    assert!(reply.statuses().len() <= 1, "{}", reply.text);
}

#[tokio::test(flavor = "multi_thread")]
async fn limits_hold_even_when_bytes_arrive_in_pieces() {
    let (be, gw) = setup(&[
        "--limits.max_uri_bytes=1024",
        "--limits.max_header_bytes=8192",
        "--limits.max_headers=50",
        "--limits.max_request_body_bytes=1000",
    ])
    .await;
    let long_uri = format!(
        "GET /petstore/v1/pet/{} HTTP/1.1\r\nHost: x\r\n\r\n",
        "a".repeat(2000)
    );
    let reply = raw::exchange(
        gw.http,
        &[long_uri.as_bytes()],
        Duration::ZERO,
        Duration::from_secs(3),
    )
    .await;
    assert_eq!(reply.statuses(), vec![414], "{}", reply.text);

    // A 10 KiB head sent in ten writes with pauses.
    let big_head = format!(
        "GET /petstore/v1/pet/1 HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "b".repeat(10 * 1024)
    );
    let pieces: Vec<&[u8]> = big_head.as_bytes().chunks(1024).collect();
    let reply = raw::exchange(
        gw.http,
        &pieces,
        Duration::from_millis(30),
        Duration::from_secs(3),
    )
    .await;
    assert_eq!(reply.statuses(), vec![431], "{}", reply.text);
    assert!(reply.closed);

    let many: String = (0..60).map(|i| format!("X-H{i}: v\r\n")).collect();
    let request = format!("GET /petstore/v1/pet/1 HTTP/1.1\r\nHost: x\r\n{many}\r\n");
    let reply = raw::exchange(
        gw.http,
        &[request.as_bytes()],
        Duration::ZERO,
        Duration::from_secs(3),
    )
    .await;
    assert_eq!(reply.statuses(), vec![431], "{}", reply.text);

    // A declared body over the limit is refused without reading it.
    let request = "POST /petstore/v1/pet HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n";
    let reply = raw::exchange(
        gw.http,
        &[request.as_bytes()],
        Duration::ZERO,
        Duration::from_secs(3),
    )
    .await;
    assert_eq!(
        reply.statuses(),
        vec![413],
        "no 100 Continue, straight 413: {}",
        reply.text
    );
    assert_eq!(be.request_count(), 0);

    // A streamed body that grows over the limit.
    let reply = client::send(
        Protocol::Http1,
        Method::POST,
        &format!("http://{}/petstore/v1/pet", gw.http),
        &[],
        client::streamed_chunked(5000),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    // Within the limit, all is well.
    let reply = client::send(
        Protocol::Http1,
        Method::POST,
        &format!("http://{}/petstore/v1/pet", gw.http),
        &[],
        client::full("x".repeat(900)),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn paths_are_normalised_before_routing_and_forwarding() {
    let (be, gw) = setup(&[]).await;
    let forwarded = [
        ("/petstore/v1/pet/./7", "/pet/7"),
        ("/petstore/v1//pet/7", "/pet/7"),
        ("/petstore/v1/pet/x/../7", "/pet/7"),
        ("/petstore/v1/pet/x/%2e%2E/7", "/pet/7"),
        ("/petstore/v1/%70et/7", "/pet/7"),
        ("/petstore/v2/../v1/pet/7", "/pet/7"),
    ];
    for (spelling, upstream) in forwarded {
        let reply = client::get(&format!("http://{}{spelling}", gw.http)).await;
        assert_eq!(reply.status, StatusCode::OK, "{spelling}");
        assert_eq!(reply.json()["path"], upstream, "{spelling}");
    }
    let before = be.request_count();
    for (spelling, status) in [
        ("/petstore/v1/pet/a%2Fb", StatusCode::BAD_REQUEST),
        ("/petstore/v1/pet/a%5cb", StatusCode::BAD_REQUEST),
        ("/petstore/v1/pet/a%00", StatusCode::BAD_REQUEST),
        ("/petstore/v1/pet/%252e%252e", StatusCode::BAD_REQUEST),
        ("/PETSTORE/v1/pet/1", StatusCode::NOT_FOUND),
        ("/petstore/v1/pet/../../lb/who", StatusCode::NOT_FOUND),
    ] {
        let reply = client::get(&format!("http://{}{spelling}", gw.http)).await;
        assert_eq!(
            reply.status,
            status,
            "{spelling}: {}",
            String::from_utf8_lossy(&reply.body)
        );
    }
    // A raw backslash.
    let reply = raw::exchange(
        gw.http,
        &[b"GET /petstore/v1/pet\\7 HTTP/1.1\r\nHost: x\r\n\r\n"],
        Duration::ZERO,
        Duration::from_secs(3),
    )
    .await;
    assert!(
        reply.statuses().first().is_some_and(|s| *s == 400),
        "{}",
        reply.text
    );
    assert_eq!(
        be.request_count(),
        before,
        "refused spellings never reach the upstream"
    );
}

#[tokio::test(flavor = "multi_thread")]
pub(crate) async fn slow_clients_are_cut_off_while_others_are_served() {
    let (_be, gw) = setup(&[
        "--timeouts.request_header_seconds=1",
        "--timeouts.request_body_idle_seconds=1",
    ])
    .await;
    let addr = gw.http;
    // Slowloris: one byte of the head every 150 ms, forever.
    let head = b"GET /petstore/v1/pet/1 HTTP/1.1\r\nHost: x\r\nX-A: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
    let pieces: Vec<&[u8]> = head.chunks(1).collect();
    let slow = tokio::spawn(async move {
        raw::exchange(
            addr,
            &pieces,
            Duration::from_millis(150),
            Duration::from_secs(3),
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let reply = client::get(&format!("http://{}/petstore/v1/pet/1", gw.http)).await;
    assert_eq!(
        reply.status,
        StatusCode::OK,
        "other clients are served meanwhile"
    );
    let slow = slow.await.unwrap();
    assert!(slow.closed, "the slow client is disconnected");
    assert!(
        slow.elapsed < Duration::from_secs(4),
        "after {:?}",
        slow.elapsed
    );
    assert!(
        slow.statuses().is_empty() || slow.statuses() == vec![408],
        "{}",
        slow.text
    );

    // A body that stops arriving.
    let reply = raw::exchange(
        gw.http,
        &[b"POST /petstore/v1/pet HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nab"],
        Duration::ZERO,
        Duration::from_secs(4),
    )
    .await;
    assert_eq!(reply.statuses(), vec![408], "{}", reply.text);

    // An idle keep-alive connection is closed too.
    let reply = raw::exchange(
        gw.http,
        &[b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"],
        Duration::ZERO,
        Duration::from_secs(4),
    )
    .await;
    assert_eq!(reply.statuses(), vec![200]);
    assert!(
        reply.closed && reply.elapsed < Duration::from_secs(3),
        "{:?}",
        reply.elapsed
    );
}

#[tokio::test(flavor = "multi_thread")]
pub(crate) async fn connections_that_never_say_their_protocol_are_cut_off() {
    // A connection that sends nothing after its TLS handshake, or only part of the HTTP/2
    // preface, holds a connection slot: it is closed at the header timeout, as a head that
    // does not come is (hyper's HTTP/2 server and its protocol detection would wait forever).
    let (_be, gw) = setup(&["--timeouts.request_header_seconds=1"]).await;
    let cert = &routing_project().cert;
    let cases: &[(&[&[u8]], &[u8])] = &[
        (&[b"h2"], b""),
        (&[b"h2"], b"PRI * HTTP/2.0\r\n"),
        (&[], b""),
        (&[], b"PRI * HTTP/2.0\r\n\r\nSM"),
    ];
    for (alpn, sent) in cases {
        let started = std::time::Instant::now();
        let (mut tls, _) = h2raw::connect_tls(gw.https, cert, alpn).await;
        let (bytes, closed) = h2raw::send_and_read(&mut tls, sent, Duration::from_secs(5)).await;
        let what = format!("ALPN {alpn:?}, sent {:?}", String::from_utf8_lossy(sent));
        assert!(closed, "{what}: still open after 5 s");
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "{what}: closed after {:?}",
            started.elapsed()
        );
        assert!(
            !String::from_utf8_lossy(&bytes).contains("HTTP/1"),
            "{what}: {:?}",
            String::from_utf8_lossy(&bytes)
        );
    }
    // Cleartext: part of an h2c preface, then nothing (the HTTP/1 server hands it over).
    let reply = raw::exchange(
        gw.http,
        &[b"PRI * HTTP/2.0\r\n\r\n"],
        Duration::ZERO,
        Duration::from_secs(5),
    )
    .await;
    assert!(
        reply.closed && reply.elapsed < Duration::from_secs(4),
        "{reply:?}"
    );
    // A whole preface in pieces is still served as HTTP/2, and HTTP/1.1 as before.
    use tokio::io::AsyncWriteExt;
    let mut h2c = tokio::net::TcpStream::connect(gw.http).await.unwrap();
    let (first, rest) = h2raw::PREFACE.split_at(10);
    h2c.write_all(first).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (frames, _) = h2raw::send_and_collect(&mut h2c, rest, Duration::from_secs(2)).await;
    assert!(
        frames.iter().any(|f| f.0 == 0x4),
        "the server's SETTINGS: {frames:?}"
    );
    let reply = client::get(&format!("http://{}/petstore/v1/pet/1", gw.http)).await;
    assert_eq!(reply.status, StatusCode::OK);

    // With the default 30 s header timeout, such connections do not hold up a stop: the
    // gateway exits at once on SIGTERM.
    let (_be, mut gw) = setup(&[]).await;
    let (_tls, _) = h2raw::connect_tls(gw.https, cert, &[]).await;
    let mut partial = tokio::net::TcpStream::connect(gw.http).await.unwrap();
    partial.write_all(b"PRI * HTTP/2.0\r\n\r\n").await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let stopping = std::time::Instant::now();
    gw.terminate();
    let status = gw
        .wait_exit(Duration::from_secs(10))
        .expect("the gateway exits");
    assert!(status.success(), "{status:?}");
    assert!(
        stopping.elapsed() < Duration::from_secs(5),
        "stopped after {:?}",
        stopping.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread")]
pub(crate) async fn idle_http2_connections_are_told_to_go_away() {
    // An HTTP/2 connection that serves no request and moves no byte for the header timeout
    // (HTTP/1.1's keep-alive idle timeout) gets a GOAWAY and is closed, as nginx does after its
    // keepalive_timeout; hyper's HTTP/2 server alone would keep it, and its connection slot,
    // for ever. One that keeps asking stays open.
    use mgw_e2e::h2raw::{self, END_HEADERS, END_STREAM, HEADERS};
    use tokio::io::AsyncWriteExt;
    let (_be, gw) = setup(&["--timeouts.request_header_seconds=1"]).await;
    let cert = &routing_project().cert;
    let block = h2raw::get_block("/petstore/v1/pet/1");

    async fn exercise<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
        stream: &mut S,
        block: &[u8],
        what: &str,
    ) {
        // Busy: a request every 0.3 s for 3 s, three header timeouts.
        for i in 0..10u32 {
            let mut request = Vec::new();
            h2raw::frame(
                &mut request,
                HEADERS,
                END_HEADERS | END_STREAM,
                2 * i + 1,
                block,
            );
            let (frames, closed) =
                h2raw::send_and_collect(stream, &request, Duration::from_millis(300)).await;
            assert!(!closed, "{what}: closed while busy, at request {i}");
            assert!(
                frames.iter().any(|f| f.0 == HEADERS && f.2 == 2 * i + 1),
                "{what}: request {i} answered: {:?}",
                frames.iter().map(|f| (f.0, f.2)).collect::<Vec<_>>()
            );
            assert!(
                h2raw::goaway_code(&frames).is_none(),
                "{what}: no GOAWAY while busy"
            );
        }
        // Quiet: told to go away (NO_ERROR) after one to two header timeouts, and closed a
        // header timeout later at most (this client does not answer the GOAWAY's PING).
        let quiet = std::time::Instant::now();
        let (frames, closed) = h2raw::send_and_collect(stream, &[], Duration::from_secs(10)).await;
        let after = quiet.elapsed();
        assert!(closed, "{what}: still open after 10 s of quiet");
        assert_eq!(
            h2raw::goaway_code(&frames),
            Some(0),
            "{what}: GOAWAY NO_ERROR: {:?}",
            frames.iter().map(|f| f.0).collect::<Vec<_>>()
        );
        assert!(
            frames.iter().all(|f| f.0 != HEADERS),
            "{what}: nothing else was answered"
        );
        assert!(
            after >= Duration::from_millis(900) && after < Duration::from_secs(6),
            "{what}: closed after {after:?}"
        );
    }

    let mut h2c = h2raw::connect(gw.http).await;
    exercise(&mut h2c, &block, "h2c").await;
    let (mut tls, alpn) = h2raw::connect_tls(gw.https, cert, &[b"h2"]).await;
    assert_eq!(alpn.as_deref(), Some(&b"h2"[..]));
    tls.write_all(&h2raw::hello()).await.unwrap();
    exercise(&mut tls, &block, "h2 over TLS").await;

    // HTTP/1.1 keeps its own idle timeout, and the gateway keeps serving.
    let reply = client::get(&format!("http://{}/petstore/v1/pet/1", gw.http)).await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
pub(crate) async fn the_connection_cap_holds_and_is_logged() {
    let (_be, gw) = setup(&["--limits.max_connections=2"]).await;
    let first = raw::idle_connection(gw.http).await;
    let _second = raw::idle_connection(gw.http).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let refused = raw::exchange(
        gw.http,
        &[b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"],
        Duration::ZERO,
        Duration::from_secs(3),
    )
    .await;
    assert!(
        refused.closed && refused.statuses().is_empty(),
        "{refused:?}"
    );
    assert!(gw
        .wait_for_log("connection limit reached", Duration::from_secs(3))
        .is_some());
    drop(first);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let reply = client::get(&format!("http://{}/health", gw.http)).await;
    assert_eq!(reply.status, StatusCode::OK, "a freed slot is usable again");
}

#[tokio::test(flavor = "multi_thread")]
async fn h2_header_lists_over_the_limit_never_reach_the_upstream() {
    let (be, gw) = setup(&["--limits.max_header_bytes=8192"]).await;
    let big = "v".repeat(12 * 1024);
    let result = client::send(
        Protocol::H2c,
        Method::GET,
        &format!("http://{}/petstore/v1/pet/1", gw.http),
        &[("x-big", &big)],
        client::empty(),
        Duration::from_secs(5),
    )
    .await;
    match result {
        Ok(reply) => assert_eq!(reply.status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE),
        Err(err) => assert!(
            !err.contains("no complete response"),
            "the stream is refused, not left hanging: {err}"
        ),
    }
    assert_eq!(be.request_count(), 0);
    let reply = client::send(
        Protocol::H2c,
        Method::GET,
        &format!("http://{}/petstore/v1/pet/1", gw.http),
        &[],
        client::empty(),
        Duration::from_secs(5),
    )
    .await
    .unwrap();
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn h2_advertises_its_limits_and_survives_a_continuation_flood() {
    use mgw_e2e::h2raw::{self, CONTINUATION, END_STREAM, HEADERS};
    let (be, gw) = setup(&[
        "--http2.max_concurrent_streams=50",
        "--limits.max_header_bytes=8192",
    ])
    .await;
    let mut stream = h2raw::connect(gw.http).await;
    // HEADERS without END_HEADERS, then CONTINUATION frames far past the header list limit.
    let mut flood = Vec::new();
    h2raw::frame(
        &mut flood,
        HEADERS,
        END_STREAM,
        1,
        &h2raw::get_block("/petstore/v1/pet/1"),
    );
    let filler: Vec<u8> = (0..40)
        .flat_map(|i| h2raw::literal(&format!("x-f{i}"), &"v".repeat(100)))
        .collect();
    for _ in 0..400 {
        h2raw::frame(&mut flood, CONTINUATION, 0, 1, &filler);
    }
    let (frames, closed) =
        h2raw::send_and_collect(&mut stream, &flood, Duration::from_secs(5)).await;
    assert_eq!(
        h2raw::setting(&frames, 0x3),
        Some(50),
        "SETTINGS_MAX_CONCURRENT_STREAMS is advertised"
    );
    assert_eq!(
        h2raw::setting(&frames, 0x6),
        Some(8192),
        "SETTINGS_MAX_HEADER_LIST_SIZE is advertised"
    );
    let refused = closed
        || h2raw::goaway_code(&frames).is_some()
        || frames
            .iter()
            .any(|f| f.0 == h2raw::RST_STREAM || f.0 == HEADERS);
    assert!(
        refused,
        "the flood ends in GOAWAY, a reset, an error response or a closed connection: {:?}",
        frames.iter().map(|f| f.0).collect::<Vec<_>>()
    );
    assert_eq!(be.request_count(), 0, "nothing of it reaches the upstream");
    let reply = client::get(&format!("http://{}/petstore/v1/pet/1", gw.http)).await;
    assert_eq!(reply.status, StatusCode::OK, "the gateway keeps serving");
}

#[tokio::test(flavor = "multi_thread")]
pub(crate) async fn h2_rapid_reset_is_cut_short() {
    use mgw_e2e::h2raw::{self, END_HEADERS, END_STREAM, HEADERS, RST_STREAM};
    let (be, gw) = setup(&[]).await;
    let mut stream = h2raw::connect(gw.http).await;
    let block = h2raw::get_block("/petstore/v1/pet/1");
    let mut burst = Vec::new();
    for i in 0..2000u32 {
        let id = 2 * i + 1;
        h2raw::frame(&mut burst, HEADERS, END_HEADERS | END_STREAM, id, &block);
        h2raw::frame(&mut burst, RST_STREAM, 0, id, &8u32.to_be_bytes()); // CANCEL
    }
    let (frames, closed) =
        h2raw::send_and_collect(&mut stream, &burst, Duration::from_secs(5)).await;
    let code = h2raw::goaway_code(&frames);
    assert!(
        closed || code.is_some(),
        "the connection is closed or told to go away"
    );
    if let Some(code) = code {
        assert_eq!(code, 0xb, "GOAWAY ENHANCE_YOUR_CALM");
    }
    let forwarded = be.request_count();
    assert!(
        forwarded < 200,
        "{forwarded} of 2000 reset streams reached the upstream"
    );
    let reply = client::get(&format!("http://{}/petstore/v1/pet/1", gw.http)).await;
    assert_eq!(reply.status, StatusCode::OK, "the gateway keeps serving");
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_chunked_bodies_are_the_clients_error() {
    // Issue 10 item 14: each is a 400 with a closed connection, the upstream request is
    // aborted (it never gets a complete body), and nothing is logged as an upstream failure.
    let upstream =
        spawn_raw(|_, _| RawAnswer::keep("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
            .await
            .unwrap();
    let gw = GatewayProcess::start(
        &routing_project().binary,
        &[format!(
            "--petstoreBackend_prod_endpoint_0={}",
            upstream.url()
        )],
        false,
    );
    let head = "POST /petstore/v1/pet HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    let cases: &[(&str, &str)] = &[
        ("chunk size zz", "zz\r\nhello\r\n0\r\n\r\n"),
        (
            "chunk size zz after a good chunk",
            "5\r\nhello\r\nzz\r\nhello\r\n0\r\n\r\n",
        ),
        (
            "a size of 18 hex digits",
            "5\r\nhello\r\nfffffffffffffffff1\r\nhello\r\n0\r\n\r\n",
        ),
        ("chunk data without its CRLF", "5\r\nhello0\r\n\r\n"),
        (
            "a last chunk without its CRLF",
            "5\r\nhello\r\n0GET /petstore/v1/pet/2 HTTP/1.1\r\nHost: x\r\n\r\n",
        ),
        (
            "a bare LF after a chunk extension",
            "5;ext=1\nhello\r\n0\r\n\r\n",
        ),
    ];
    for (case, body) in cases {
        let before = upstream.seen().len();
        let reply = raw::exchange(
            gw.http,
            &[head.as_bytes(), body.as_bytes()],
            Duration::from_millis(100),
            Duration::from_secs(5),
        )
        .await;
        assert_eq!(reply.statuses(), vec![400], "{case}:\n{}", reply.text);
        assert!(reply.closed, "{case}: the connection is closed");
        assert!(
            reply.text.contains("900900"),
            "{case}: a WSO2 fault body:\n{}",
            reply.text
        );
        // The upstream may have started reading it, but never got all of it.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let seen = upstream.seen();
        assert!(
            seen[before..].iter().all(|s| !s.complete),
            "{case}: {seen:#?}"
        );
    }
    let logs = gw.logs().join("\n");
    assert!(!logs.contains("upstream request failed"), "{logs}");
    assert!(
        gw.wait_for_log("POST /petstore/v1/pet 400", Duration::from_secs(3))
            .is_some(),
        "{logs}"
    );
    // The gateway and the upstream keep working.
    let reply = client::get(&format!("http://{}/petstore/v1/pet/1", gw.http)).await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_body_trickling_in_is_cut_off_by_the_minimum_rate() {
    // Issue 10 item 15: one byte every 300 ms never trips the idle timeout, but the body
    // must arrive within 2 s plus 1 s per 100 bytes.
    let upstream =
        spawn_raw(|_, _| RawAnswer::keep("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
            .await
            .unwrap();
    let gw = GatewayProcess::start(
        &routing_project().binary,
        &[
            format!("--petstoreBackend_prod_endpoint_0={}", upstream.url()),
            "--timeouts.request_body_seconds=2".to_string(),
            "--timeouts.request_body_min_rate_bytes=100".to_string(),
        ],
        false,
    );
    let head = b"POST /petstore/v1/pet HTTP/1.1\r\nHost: x\r\nContent-Length: 60\r\n\r\n";
    let reply = raw::trickle(
        gw.http,
        head,
        &[b'x'; 60],
        Duration::from_millis(300),
        Duration::from_secs(15),
    )
    .await;
    assert_eq!(reply.statuses(), vec![408], "{}", reply.text);
    assert!(reply.closed, "the connection is closed");
    assert!(
        reply.elapsed < Duration::from_secs(5),
        "cut off after {:?}",
        reply.elapsed
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        upstream.seen().iter().all(|s| !s.complete),
        "aborted upstream"
    );
    // A body at a normal pace is not affected, even a large one.
    let reply = client::send(
        Protocol::Http1,
        Method::POST,
        &format!("http://{}/petstore/v1/pet", gw.http),
        &[],
        client::streamed(4 * 1024 * 1024),
        Duration::from_secs(20),
    )
    .await
    .unwrap();
    assert_eq!(reply.status, StatusCode::OK);
    // Over h2 too.
    let url = format!("http://{}/petstore/v1/pet", gw.http);
    let reply = client::send(
        Protocol::H2c,
        Method::POST,
        &url,
        &[],
        client::trickled(60, Duration::from_millis(300)),
        Duration::from_secs(15),
    )
    .await;
    match reply {
        Ok(reply) => assert_eq!(reply.status, StatusCode::REQUEST_TIMEOUT),
        Err(err) => panic!("h2: {err}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
pub(crate) async fn after_alpn_h2_the_tls_connection_speaks_only_http2() {
    // Issue 10 item 16 (RFC 9113 §3.3): an invalid preface after ALPN chose h2 gets a GOAWAY
    // with PROTOCOL_ERROR or a closed connection, never an HTTP/1.1 answer.
    let (_be, gw) = setup(&[]).await;
    let cert = &routing_project().cert;
    let invalid: &[&[u8]] = &[
        b"GET /petstore/v1/pet/1 HTTP/1.1\r\nHost: x\r\n\r\n",
        b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n",
        b"PRI * HTTP/1.1\r\n\r\nSM\r\n\r\n",
    ];
    for preface in invalid {
        let (mut tls, chosen) = h2raw::connect_tls(gw.https, cert, &[b"h2"]).await;
        assert_eq!(chosen.as_deref(), Some(&b"h2"[..]));
        let (bytes, closed) = h2raw::send_and_read(&mut tls, preface, Duration::from_secs(5)).await;
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains("HTTP/1"), "{text}");
        let frames = h2raw::parse_frames(&bytes);
        let code = h2raw::goaway_code(&frames);
        assert!(
            closed || code.is_some(),
            "GOAWAY or close: {:?}",
            String::from_utf8_lossy(preface)
        );
        if let Some(code) = code {
            assert_eq!(code, 0x1, "PROTOCOL_ERROR");
        }
    }
    // ALPN http/1.1 still speaks HTTP/1.1 on the same listener.
    let (mut tls, chosen) = h2raw::connect_tls(gw.https, cert, &[b"http/1.1"]).await;
    assert_eq!(chosen.as_deref(), Some(&b"http/1.1"[..]));
    let (bytes, _) = h2raw::send_and_read(
        &mut tls,
        b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        Duration::from_secs(5),
    )
    .await;
    assert!(
        bytes.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&bytes)
    );
}
