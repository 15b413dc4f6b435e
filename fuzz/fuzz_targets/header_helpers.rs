//! Header rewriting between client and upstream, and the runtime settings parser.
//!
//! The input is read as a header block (`name: value` lines; invalid names or values are
//! skipped), handled as the proxy step handles a request's head: `client_host` (which strips
//! hop-by-hop fields), then the proxy's own fields (`ProxyFields`) written as the upstream head
//! is written. No hop-by-hop header may be left, the written lines must read back as the map
//! hyper's client would get (`ProxyFields::apply`), and `X-Forwarded-For` must be the client's.
//! The same text is also parsed as `micro-gw.toml`, which must not panic.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use http::header::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use mgw_runtime::proxy::fields::{HostField, ProxyFields};
use mgw_runtime::proxy::headers::{client_host, X_FORWARDED_FOR, X_FORWARDED_HOST, X_FORWARDED_PROTO};
use mgw_runtime::telemetry::trace_context::{SpanId, TraceContext, TraceId};

const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "proxy-authorization",
    "proxy-authenticate",
    "proxy-connection",
];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };

    let mut headers = HeaderMap::new();
    for line in text.lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.trim().as_bytes()),
            HeaderValue::from_bytes(value.trim().as_bytes()),
        ) else {
            continue;
        };
        headers.append(name, value);
    }
    // The connection facts come from the input's length, so each input is one fixed case.
    let trusted = data.len() & 1 == 1;
    let client = if data.len() & 2 == 0 {
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7))
    } else {
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 7))
    };
    let proto = if data.len() & 4 == 0 { "http" } else { "https" };
    let trace = TraceContext {
        trace_id: TraceId(0x4bf9_2f35_77b3_4da6_a3ce_929d_0e0e_4736),
        parent_id: (data.len() & 8 == 0).then_some(SpanId(0x00f0_67aa_0ba9_02b7)),
        span_id: SpanId(0x1234_5678_9abc_def0),
        sampled: data.len() & 16 == 0,
    };
    let upstream_host = HeaderValue::from_static("upstream.test:8080");

    // As the proxy step does: the client's `Host` (hop-by-hop fields stripped on the way), then
    // the proxy's own fields, written with the head.
    // The first line as an authority too: a request without `Host` (HTTP/2, HTTP/1.0
    // absolute form) takes its host from there, never its userinfo.
    let authority = text
        .lines()
        .next()
        .and_then(|line| http::uri::Authority::try_from(line.trim()).ok());
    let (host, in_head) = client_host(&mut headers, authority.as_ref());
    if !in_head {
        if let Some(host) = &host {
            assert!(!host.as_bytes().contains(&b'@'), "{host:?}");
        }
    }
    for name in HOP_BY_HOP {
        assert!(
            !headers.contains_key(name),
            "hop-by-hop header {name} survived client_host"
        );
    }
    assert!(headers.get_all(http::header::HOST).iter().count() <= 1);
    let mut fields = ProxyFields::new();
    fields.forwarded(&headers, client, trusted, proto, host.clone());
    fields.trace(&trace, &headers);
    fields.host = match data.len() & 32 {
        0 => HostField::Replace(&upstream_host),
        _ => HostField::Default(&upstream_host),
    };
    let mut written = Vec::new();
    fields.write_fields(&mut written, &headers);

    // What was written reads back as the map the same fields give hyper's client.
    let mut applied = headers.clone();
    fields.apply(&mut applied);
    let read = read_lines(&written);
    assert_same_values(&read, &applied);
    for name in HOP_BY_HOP {
        assert!(
            !read.contains_key(name),
            "hop-by-hop header {name} present in the upstream head"
        );
    }
    // The gateway's own view always reaches the upstream.
    let forwarded_for = read
        .get(&X_FORWARDED_FOR)
        .expect("X-Forwarded-For is always set");
    let client_text = client.to_string();
    assert_eq!(read.get_all(&X_FORWARDED_FOR).iter().count(), 1);
    if trusted {
        let value = forwarded_for.to_str().expect("X-Forwarded-For is ASCII");
        assert!(value.ends_with(&client_text), "{value:?}");
    } else {
        assert_eq!(forwarded_for, client_text.as_str());
        assert_eq!(read[&X_FORWARDED_PROTO], proto);
        assert_eq!(read.get(&X_FORWARDED_HOST), host.as_ref());
    }
    assert!(read.contains_key(&X_FORWARDED_PROTO));
    assert_eq!(read["traceparent"], trace.traceparent());
    // A resend through hyper's client leaves the fields in its map; written again over that map
    // they are the same.
    let mut resent = headers.clone();
    fields.apply(&mut resent);
    let mut again = Vec::new();
    fields.write_fields(&mut again, &resent);
    assert_same_values(&read_lines(&again), &read);

    let _ = mgw_runtime::config::parse(text, Path::new("f.toml"), &[], &[]);
});

/// The `name: value\r\n` lines the head writer wrote, as a map (each must be a valid field).
fn read_lines(written: &[u8]) -> HeaderMap {
    let written = std::str::from_utf8(written).expect("field lines are the client's text or ASCII");
    let mut read = HeaderMap::new();
    for line in written.split_terminator("\r\n") {
        let (name, value) = line.split_once(": ").expect("a field line");
        read.append(
            HeaderName::from_bytes(name.as_bytes()).expect("a written name is a name"),
            HeaderValue::from_bytes(value.as_bytes()).expect("a written value is a value"),
        );
    }
    read
}

/// `written` has the fields `expected` has: the same values for each name, in the same order
/// (the order of different names may differ).
fn assert_same_values(written: &HeaderMap, expected: &HeaderMap) {
    for name in expected.keys() {
        let mine: Vec<_> = written.get_all(name).iter().collect();
        let theirs: Vec<_> = expected.get_all(name).iter().collect();
        assert_eq!(mine, theirs, "{name}");
    }
    assert_eq!(written.len(), expected.len());
}
