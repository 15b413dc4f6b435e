//! Header rewriting between client and upstream, and the runtime settings parser.
//!
//! The input is read as a header block (`name: value` lines; invalid names or values are
//! skipped). After `strip_hop_by_hop` and `add_forwarded` no hop-by-hop header may be left.
//! The same text is also parsed as `micro-gw.toml`, which must not panic.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use http::header::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use mgw_runtime::proxy::headers::{
    add_forwarded, strip_hop_by_hop, X_FORWARDED_FOR, X_FORWARDED_HOST, X_FORWARDED_PROTO,
};

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
    let host = headers.get(http::header::HOST).cloned();

    strip_hop_by_hop(&mut headers);
    for name in HOP_BY_HOP {
        assert!(
            !headers.contains_key(name),
            "hop-by-hop header {name} survived strip_hop_by_hop"
        );
    }

    add_forwarded(&mut headers, client, trusted, proto, host.clone());
    for name in HOP_BY_HOP {
        assert!(
            !headers.contains_key(name),
            "hop-by-hop header {name} present after add_forwarded"
        );
    }
    // The gateway's own view always reaches the upstream.
    let forwarded_for = headers
        .get(&X_FORWARDED_FOR)
        .expect("X-Forwarded-For is always set");
    let client_text = client.to_string();
    if trusted {
        let value = forwarded_for.to_str().expect("X-Forwarded-For is ASCII");
        assert!(value.ends_with(&client_text), "{value:?}");
    } else {
        assert_eq!(forwarded_for, client_text.as_str());
        assert_eq!(headers[&X_FORWARDED_PROTO], proto);
        assert_eq!(headers.get(&X_FORWARDED_HOST), host.as_ref());
    }
    assert!(headers.contains_key(&X_FORWARDED_PROTO));

    let _ = mgw_runtime::config::parse(text, Path::new("f.toml"), &[], &[]);
});
