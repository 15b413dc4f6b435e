use std::net::{IpAddr, Ipv4Addr};

use http::header::{CONTENT_LENGTH, CONTENT_TYPE};

use super::*;
use crate::expression::ConsumerInfo;
use crate::policies::transformer::Operations;

const IP: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn ops(add: &[(&str, &str)], remove: &[&str]) -> Option<Operations> {
    Some(Operations {
        add: add
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        remove: remove.iter().map(|s| s.to_string()).collect(),
    })
}

fn request(content_type: Option<&str>) -> http::request::Parts {
    let mut builder = http::Request::builder()
        .method("POST")
        .uri("/p?q=1")
        .header("x-test", "old")
        .header("authorization", "Basic YTpi");
    if let Some(t) = content_type {
        builder = builder.header("content-type", t);
    }
    builder.body(()).unwrap().into_parts().0
}

/// EG test/policies/modifier: the request transformer of its pipeline.
fn modifier_request() -> TransformerPolicy {
    TransformerPolicy::new(&TransformerSpec {
        headers: ops(&[("r-test", "\"baffino\"")], &[]),
        body: ops(&[("hello", "\"world\"")], &[]),
    })
    .unwrap()
}

/// EG test/policies/modifier: the response transformer of its pipeline.
fn modifier_response() -> TransformerPolicy {
    TransformerPolicy::new(&TransformerSpec {
        headers: ops(&[("res", "\"correct\"")], &["x-test"]),
        body: ops(&[("hello", "\"world\"")], &["url"]),
    })
    .unwrap()
}

fn body_of(
    policy: &TransformerPolicy,
    content_type: Option<&str>,
    body: &[u8],
) -> Result<(String, &'static str), BodyError> {
    let parts = request(content_type);
    let scope = RequestScope::new(&parts, IP);
    let out = policy
        .transform_request_body(&parts.headers, body, &scope)?
        .expect("body changes");
    Ok((String::from_utf8(out.bytes).unwrap(), out.content_type))
}

#[test]
fn eg_modifier_request_json_and_form() {
    let policy = modifier_request();
    let mut parts = request(Some("application/json"));
    let changes = policy
        .header_changes(&RequestScope::new(&parts, IP))
        .unwrap();
    changes.apply(&mut parts.headers);
    assert_eq!(parts.headers["r-test"], "baffino");
    // `.type('json').send({})`.
    assert_eq!(
        body_of(&policy, Some("application/json"), b"{}").unwrap(),
        (r#"{"hello":"world"}"#.into(), "application/json")
    );
    // `.type('form').send({ hello: 'world' })`.
    assert_eq!(
        body_of(
            &policy,
            Some("application/x-www-form-urlencoded"),
            b"hello=world"
        )
        .unwrap(),
        ("hello=world".into(), "application/x-www-form-urlencoded")
    );
    // Fields are added to what the client sent, in JavaScript's key order.
    assert_eq!(
        body_of(
            &policy,
            Some("application/json; charset=UTF-8"),
            br#" {"a":1,"hello":"x","2":true} "#
        )
        .unwrap()
        .0,
        r#"{"2":true,"a":1,"hello":"world"}"#
    );
    assert_eq!(
        body_of(
            &policy,
            Some("application/x-www-form-urlencoded"),
            b"a=1&hello=x+y&b=%C3%A9"
        )
        .unwrap()
        .0,
        "a=1&hello=world&b=%C3%A9"
    );
}

#[test]
fn request_bodies_that_are_not_json_or_form_become_json() {
    let policy = modifier_request();
    // EG reads no body from other types, and sends the added fields as JSON.
    for (content_type, body) in [
        (None, &b""[..]),
        (Some("text/plain"), b"some text"),
        (Some("application/json"), b""),
        (Some("application/x-www-form-urlencoded"), b""),
        (Some("application/vnd.api+json"), br#"{"a":1}"#),
    ] {
        assert_eq!(
            body_of(&policy, content_type, body).unwrap(),
            (r#"{"hello":"world"}"#.into(), "application/json"),
            "{content_type:?} {body:?}"
        );
    }
    // A JSON array is sent back as it is.
    assert_eq!(
        body_of(&policy, Some("application/json"), b"[1, {\"a\" : 2}]")
            .unwrap()
            .0,
        r#"[1,{"a":2}]"#
    );
}

#[test]
fn request_bodies_express_refuses() {
    let policy = modifier_request();
    let status = |t: &str, body: &[u8]| body_of(&policy, Some(t), body).unwrap_err().status();
    assert_eq!(
        status("application/json", b"{\"a\":"),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        status("application/json", b"\"text\""),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(status("application/json", b"  "), StatusCode::BAD_REQUEST);
    assert_eq!(status("application/json", b"1"), StatusCode::BAD_REQUEST);
    assert_eq!(
        status("application/json; charset=latin1", b"{}"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
    assert_eq!(
        status("application/x-www-form-urlencoded; charset=utf-16", b"a=1"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
    assert_eq!(
        status(
            "application/x-www-form-urlencoded",
            "a=1&".repeat(1000).as_bytes()
        ),
        StatusCode::PAYLOAD_TOO_LARGE
    );
    let mut parts = request(Some("application/json"));
    parts
        .headers
        .insert("content-encoding", HeaderValue::from_static("gzip"));
    let scope = RequestScope::new(&parts, IP);
    let e = policy
        .transform_request_body(&parts.headers, b"{}", &scope)
        .unwrap_err();
    assert_eq!(e, BodyError::Encoding("gzip".into()));
    assert_eq!(e.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // A utf- charset iconv-lite does not know.
    assert_eq!(
        status("application/json; charset=utf-99", b"{}"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
    // A BOM is skipped, as body-parser's decoding does.
    assert_eq!(
        body_of(&policy, Some("application/json"), "\u{feff}{}".as_bytes())
            .unwrap()
            .0,
        r#"{"hello":"world"}"#
    );
}

#[test]
fn a_failing_expression_fails_the_request_body() {
    let policy = TransformerPolicy::new(&TransformerSpec {
        headers: None,
        body: ops(&[("user", "req.user.id")], &[]),
    })
    .unwrap();
    let e = body_of(&policy, Some("application/json"), b"{}").unwrap_err();
    assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
    // With a consumer it works; `undefined` leaves the field out.
    let parts = request(Some("application/json"));
    let consumer = ConsumerInfo {
        id: "c1",
        ..Default::default()
    };
    let mut scope = RequestScope::new(&parts, IP);
    scope.consumer = Some(&consumer);
    let out = policy
        .transform_request_body(&parts.headers, br#"{"a":1}"#, &scope)
        .unwrap()
        .unwrap();
    assert_eq!(out.bytes, br#"{"a":1,"user":"c1"}"#);
    let policy = TransformerPolicy::new(&TransformerSpec {
        headers: None,
        body: ops(
            &[
                ("a", "req.headers.missing"),
                ("n", "1.5"),
                ("t", "req.secure"),
            ],
            &[],
        ),
    })
    .unwrap();
    let out = policy
        .transform_request_body(&parts.headers, br#"{"a":1}"#, &scope)
        .unwrap()
        .unwrap();
    assert_eq!(out.bytes, br#"{"n":1.5,"t":false}"#);
    let out = policy
        .transform_request_body(&parts.headers, b"", &scope)
        .unwrap()
        .unwrap();
    let mut headers = HeaderMap::new();
    headers.insert("transfer-encoding", HeaderValue::from_static("chunked"));
    out.apply_headers(&mut headers);
    assert_eq!(headers[CONTENT_TYPE], "application/json");
    assert_eq!(
        headers[CONTENT_LENGTH],
        out.bytes.len().to_string().as_str()
    );
    assert!(!headers.contains_key("transfer-encoding"));
}

#[test]
fn eg_modifier_response() {
    let policy = modifier_response();
    let parts = request(Some("application/json"));
    let scope = RequestScope::new(&parts, IP);
    let mut response = HeaderMap::new();
    response.insert("x-test", HeaderValue::from_static("hello"));
    response.insert("content-type", HeaderValue::from_static("application/json"));
    policy.header_changes(&scope).unwrap().apply(&mut response);
    assert_eq!(response["res"], "correct");
    assert!(!response.contains_key("x-test"));
    let body = policy
        .transform_response_body(br#"{"url":"/","hello":"world"}"#, &scope)
        .unwrap();
    assert_eq!(body, br#"{"hello":"world"}"#);
    // Other JSON values but null are written again by JSON.stringify (found with eg-diff:
    // EG answers `[{"backend":"backend","ok":true},1,"two"]` for the spaced array).
    for (upstream, rewritten) in [
        (
            &b"[ {\"url\": \"/\"}, 1, \"two\" ]"[..],
            &br#"[{"url":"/"},1,"two"]"#[..],
        ),
        (b" \"s\" ", br#""s""#),
        (b"true", b"true"),
        (b"\n12\n", b"12"),
    ] {
        assert_eq!(
            policy.transform_response_body(upstream, &scope).as_deref(),
            Some(rewritten),
            "{upstream:?}"
        );
    }
    // null (a TypeError in EG) and what is not JSON pass unchanged.
    for unchanged in [&b"null"[..], b"not json", b"", b"{\"a\":"] {
        assert_eq!(
            policy.transform_response_body(unchanged, &scope),
            None,
            "{unchanged:?}"
        );
    }
    // So does an object when an expression fails (EG catches and writes the original).
    let failing = TransformerPolicy::new(&TransformerSpec {
        headers: None,
        body: ops(&[("u", "req.user.id")], &[]),
    })
    .unwrap();
    assert_eq!(failing.transform_response_body(b"{}", &scope), None);
    // Without body changes nothing is read.
    let headers_only = TransformerPolicy::new(&TransformerSpec {
        headers: ops(&[("a", "'b'")], &[]),
        body: None,
    })
    .unwrap();
    assert!(!headers_only.changes_body());
    assert_eq!(headers_only.transform_response_body(b"{}", &scope), None);
    assert_eq!(
        headers_only
            .transform_request_body(&parts.headers, b"{}", &scope)
            .unwrap(),
        None
    );
}

#[test]
fn kargo_www_authenticate_basic() {
    // Kargo's wms/wmts/tms pipelines: `WWW-Authenticate: "'Basic'"` on anonymous requests.
    let policy = TransformerPolicy::new(&TransformerSpec {
        headers: ops(&[("WWW-Authenticate", "'Basic'")], &[]),
        body: None,
    })
    .unwrap();
    let parts = request(None);
    let mut response = HeaderMap::new();
    policy
        .header_changes(&RequestScope::new(&parts, IP))
        .unwrap()
        .apply(&mut response);
    assert_eq!(response["www-authenticate"], "Basic");
}

#[test]
fn add_replaces_and_remove_deletes_whatever_the_case() {
    let policy = TransformerPolicy::new(&TransformerSpec {
        headers: ops(
            &[
                ("X-Test", "req.headers['x-test'] + '-new'"),
                ("x-ip", "req.ip"),
                ("x-n", "1 + 1"),
            ],
            &["Authorization", "not a header"],
        ),
        body: None,
    })
    .unwrap();
    let mut parts = request(None);
    parts
        .headers
        .append("x-test", HeaderValue::from_static("second"));
    let changes = policy
        .header_changes(&RequestScope::new(&parts, IP))
        .unwrap();
    changes.apply(&mut parts.headers);
    let all: Vec<_> = parts.headers.get_all("x-test").iter().collect();
    assert_eq!(all, ["old, second-new"]);
    assert_eq!(parts.headers["x-ip"], "127.0.0.1");
    assert_eq!(parts.headers["x-n"], "2");
    assert!(!parts.headers.contains_key("authorization"));
}

#[test]
fn values_that_cannot_be_headers_are_skipped() {
    let policy = TransformerPolicy::new(&TransformerSpec {
        headers: ops(
            &[
                ("a-undefined", "req.headers.missing"),
                ("a-euro", "'€'"),
                ("a-newline", "'a\\nb'"),
                ("a-latin", "'café'"),
                ("a-null", "null"),
                ("a-empty", "''"),
            ],
            &[],
        ),
        body: None,
    })
    .unwrap();
    let mut parts = request(None);
    let changes = policy
        .header_changes(&RequestScope::new(&parts, IP))
        .unwrap();
    changes.apply(&mut parts.headers);
    assert!(!parts.headers.contains_key("a-undefined"));
    assert!(!parts.headers.contains_key("a-euro"));
    assert!(!parts.headers.contains_key("a-newline"));
    assert_eq!(parts.headers["a-latin"].as_bytes(), b"caf\xe9");
    assert_eq!(parts.headers["a-null"], "null");
    assert_eq!(parts.headers["a-empty"], "");
}

#[test]
fn headers_policy_prefixes_names() {
    let policy = HeadersPolicy::new(&HeadersSpec {
        prefix: "eg-".into(),
        forward: vec![
            (
                "user-agent".into(),
                "req.headers['user-agent'] || 'none'".into(),
            ),
            ("request-id".into(), "egContext.requestID".into()),
        ],
    })
    .unwrap();
    let mut parts = request(None);
    let mut scope = RequestScope::new(&parts, IP);
    scope.request_id = "r-1";
    let changes = policy.header_changes(&scope).unwrap();
    changes.apply(&mut parts.headers);
    assert_eq!(parts.headers["eg-user-agent"], "none");
    assert_eq!(parts.headers["eg-request-id"], "r-1");
}

#[test]
fn specs_are_checked_naming_the_field() {
    let spec = TransformerSpec {
        headers: ops(&[("x-ok", "'a'"), ("x-bad", "process.env.SECRET")], &[]),
        body: None,
    };
    let e = spec.check().unwrap_err();
    assert_eq!(
        e.to_string(),
        "headers.add.x-bad: the expression \"process.env.SECRET\" cannot be run: column 1: unknown name `process`: expressions can only read req, res, egContext, consumer, requestID, apiEndpoint"
    );
    assert_eq!(TransformerPolicy::new(&spec).unwrap_err(), e);
    let spec = TransformerSpec {
        headers: ops(&[("bad name", "'a'")], &[]),
        body: None,
    };
    assert!(matches!(spec.check(), Err(SpecError::HeaderName { .. })));
    let spec = TransformerSpec {
        headers: None,
        body: ops(&[("any name works", "req.url = 1")], &[]),
    };
    assert!(matches!(
        spec.check(),
        Err(SpecError::Expression { field, .. }) if field == "body.add.any name works"
    ));
    let spec = HeadersSpec {
        prefix: "x ".into(),
        forward: vec![("a".into(), "'b'".into())],
    };
    assert!(spec.check().is_err());
    assert!(HeadersPolicy::new(&spec).is_err());
}

/// Seeded random inputs (request bodies, header and query bytes, expression texts): nothing
/// panics, and JSON written back reads back the same.
#[test]
fn random_inputs_never_panic() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(12);
    const JSON_BITS: &[&str] = &[
        "{", "}", "[", "]", "\"", ":", ",", "0", "1", "-", ".", "e", "E", "+", "\\", "u", "d8",
        "00", "null", "true", "false", " ", "\n", "\"a\"", "\"10\"", "é", "\u{2028}", "\\ud800",
        "\\u0000", "€",
    ];
    const EXPR_BITS: &[&str] = &[
        "req",
        "res",
        "egContext",
        "consumer",
        "requestID",
        "apiEndpoint",
        ".",
        "?.",
        "[",
        "]",
        "(",
        ")",
        "'",
        "\"",
        "`",
        "${",
        "}",
        "+",
        "-",
        "!",
        "||",
        "&&",
        "??",
        "?",
        ":",
        "===",
        "!==",
        "==",
        "=",
        "headers",
        "query",
        "user",
        "id",
        "ip",
        "url",
        "x",
        "1",
        "0x",
        ".5",
        "e",
        "\\",
        "\\u{",
        "\\x",
        " ",
        "é",
        "null",
        "undefined",
        ";",
        ",",
        "/",
        "*",
    ];
    let pick = |rng: &mut rand::rngs::StdRng, bits: &[&str], n: usize| -> String {
        (0..n).map(|_| bits[rng.gen_range(0..bits.len())]).collect()
    };
    let policy = TransformerPolicy::new(&TransformerSpec {
        headers: ops(&[("x-a", "req.headers['x-r'] + req.query.q")], &["x-r"]),
        body: ops(
            &[(
                "a",
                "req.query.q == 1 ? +req.headers['x-r'] : req.headers['x-r']",
            )],
            &["b"],
        ),
    })
    .unwrap();
    for i in 0..5_000 {
        let n = rng.gen_range(0..24);
        let text = pick(&mut rng, JSON_BITS, n);
        if let Ok(value) = json::parse(&text) {
            let written = json::stringify(&value);
            let again =
                json::parse(&written).unwrap_or_else(|e| panic!("{text:?} → {written:?}: {e:?}"));
            assert_eq!(json::stringify(&again), written, "{text:?}");
        }
        // Request data: random bytes in headers, the query, and the body.
        let raw: Vec<u8> = (0..rng.gen_range(0..12)).map(|_| rng.gen()).collect();
        let header = HeaderValue::from_bytes(&raw)
            .unwrap_or_else(|_| HeaderValue::from_bytes(b"caf\xe9").unwrap());
        let query: String = raw
            .iter()
            .map(|b| match b % 6 {
                0 => "%".to_string(),
                1 => "&".to_string(),
                2 => "=".to_string(),
                3 => "+".to_string(),
                _ => format!("%{b:02X}q"),
            })
            .collect();
        let content_type = [
            "application/json",
            "application/x-www-form-urlencoded",
            "text/plain",
        ][i % 3];
        let mut parts = http::Request::post(format!("/p?q={query}"))
            .header("x-r", header)
            .header("content-type", content_type)
            .body(())
            .unwrap()
            .into_parts()
            .0;
        let body = if i % 2 == 0 {
            text.into_bytes()
        } else {
            raw.clone()
        };
        let scope = RequestScope::new(&parts, IP);
        let _ = policy.transform_request_body(&parts.headers, &body, &scope);
        let _ = policy.transform_response_body(&body, &scope);
        let changes = policy.header_changes(&scope).unwrap();
        changes.apply(&mut parts.headers);
        // Configuration text: parsed at build time, must refuse, never panic.
        let n = rng.gen_range(0..10);
        let source = pick(&mut rng, EXPR_BITS, n);
        let parsed = [
            Expression::parse(&source),
            Expression::parse_template(&source),
        ];
        for expression in parsed.iter().flatten() {
            let _ = expression.eval(&RequestScope::new(&parts, IP));
        }
    }
}

#[test]
fn decoded_query_text_cannot_inject_headers() {
    // `req.query.q` is percent-decoded: CR LF or characters beyond Latin-1 from the client must
    // not become a header.
    let policy = TransformerPolicy::new(&TransformerSpec {
        headers: ops(&[("x-q", "req.query.q")], &[]),
        body: None,
    })
    .unwrap();
    for (query, expected) in [
        ("q=a%0D%0AX-Evil:%201", None),
        ("q=%E2%82%AC", None),
        ("q=%00", None),
        ("q=caf%C3%A9", Some(&b"caf\xe9"[..])),
        ("q=a+b", Some(&b"a b"[..])),
    ] {
        let mut parts = http::Request::get(format!("/?{query}"))
            .body(())
            .unwrap()
            .into_parts()
            .0;
        let changes = policy
            .header_changes(&RequestScope::new(&parts, IP))
            .unwrap();
        changes.apply(&mut parts.headers);
        assert_eq!(
            parts.headers.get("x-q").map(|v| v.as_bytes()),
            expected,
            "{query}"
        );
        assert!(!parts.headers.contains_key("x-evil"));
    }
}

/// body-parser decodes JSON in every UTF charset iconv-lite knows (found with eg-diff: EG
/// proxies a UTF-16 body as UTF-8 JSON).
#[test]
fn json_bodies_in_utf16_and_utf32_are_decoded() {
    let policy = modifier_request();
    let text = r#"{"keep":"é☃"}"#;
    let le16: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let be16: Vec<u8> = text.encode_utf16().flat_map(u16::to_be_bytes).collect();
    let le32: Vec<u8> = text
        .chars()
        .flat_map(|c| u32::from(c).to_le_bytes())
        .collect();
    let be32: Vec<u8> = text
        .chars()
        .flat_map(|c| u32::from(c).to_be_bytes())
        .collect();
    let with_bom = |bom: &[u8], body: &[u8]| [bom, body].concat();
    let expected = r#"{"keep":"é☃","hello":"world"}"#;
    for (charset, body) in [
        ("utf-16le", le16.clone()),
        ("utf-16be", be16.clone()),
        ("utf-16", with_bom(&[0xff, 0xfe], &le16)),
        ("utf-16", with_bom(&[0xfe, 0xff], &be16)),
        ("utf-16", le16.clone()),
        ("utf-16", be16.clone()),
        ("UTF-16LE", with_bom(&[0xff, 0xfe], &le16)),
        ("utf-32le", le32.clone()),
        ("utf-32be", be32.clone()),
        ("utf-32", be32.clone()),
        ("utf-32", with_bom(&[0xff, 0xfe, 0, 0], &le32)),
        ("utf-8", text.as_bytes().to_vec()),
    ] {
        let content_type = format!("application/json; charset={charset}");
        let (out, kind) = body_of(&policy, Some(&content_type), &body).unwrap();
        assert_eq!(out, expected, "{charset} {body:?}");
        assert_eq!(kind, "application/json");
    }
    // An odd byte at the end is a replacement character, not a panic.
    let mut odd = le16.clone();
    odd.push(b'x');
    assert_eq!(
        body_of(&policy, Some("application/json; charset=utf-16le"), &odd)
            .unwrap_err()
            .status(),
        StatusCode::BAD_REQUEST
    );
}
