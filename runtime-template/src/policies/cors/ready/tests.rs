//! Expected values were observed on npm `cors` 2.8.6 under Express 4.22.3 (Node 20), the
//! packages Express Gateway 1.16.11 installs, and read from Ballerina 1.2's
//! `CorsHeaderGenerator` for the WSO2 dialect.

use super::*;

fn request(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    h
}

/// The headers as `name: value` lines, in order.
fn lines(h: &HeaderMap) -> Vec<String> {
    h.iter()
        .map(|(k, v)| format!("{}: {}", k, v.to_str().unwrap()))
        .collect()
}

fn eg(spec: CorsSpec) -> CorsPolicy {
    CorsPolicy::new(&spec).unwrap()
}

fn exact(list: &[&str]) -> CorsOrigin {
    CorsOrigin::List(
        list.iter()
            .map(|s| OriginPattern::Exact(s.to_string()))
            .collect(),
    )
}

fn regexes(list: &[&str]) -> CorsOrigin {
    CorsOrigin::List(
        list.iter()
            .map(|s| OriginPattern::Regex(s.to_string()))
            .collect(),
    )
}

/// EG's `test/policies/cors/cors.test.js` action: methods and a fixed allowed header.
fn eg_test_action(origin: CorsOrigin) -> CorsPolicy {
    eg(CorsSpec {
        origin,
        methods: vec!["HEAD,PUT,PATCH,POST,DELETE".into()],
        allowed_headers: Some(vec!["X-TEST".into()]),
        ..CorsSpec::default()
    })
}

fn preflight_from(policy: &CorsPolicy, origin: &str) -> Preflight {
    policy
        .preflight(&Method::OPTIONS, &request(&[("origin", origin)]))
        .expect("answered")
}

#[test]
fn defaults_answer_every_options_204_with_reflected_headers() {
    let p = eg(CorsSpec::default());
    let answer = p
        .preflight(
            &Method::OPTIONS,
            &request(&[
                ("origin", "http://x.com"),
                ("access-control-request-method", "POST"),
                ("access-control-request-headers", "authorization,x-y"),
            ]),
        )
        .unwrap();
    assert_eq!(answer.status, StatusCode::NO_CONTENT);
    assert_eq!(
        lines(&answer.headers),
        [
            "access-control-allow-origin: *",
            "access-control-allow-methods: GET,HEAD,PUT,PATCH,POST,DELETE",
            "vary: Access-Control-Request-Headers",
            "access-control-allow-headers: authorization,x-y",
            "content-length: 0",
        ]
    );
    // Not even an Origin or Access-Control-Request-Method is needed (npm checks the method only).
    let bare = p.preflight(&Method::OPTIONS, &HeaderMap::new()).unwrap();
    assert_eq!(
        lines(&bare.headers),
        [
            "access-control-allow-origin: *",
            "access-control-allow-methods: GET,HEAD,PUT,PATCH,POST,DELETE",
            "vary: Access-Control-Request-Headers",
            "content-length: 0",
        ]
    );
    assert!(p.preflight(&Method::GET, &HeaderMap::new()).is_none());
}

#[test]
fn origin_as_string_is_sent_fixed_with_vary() {
    let p = eg_test_action(CorsOrigin::Fixed("http://www.example.com".into()));
    let answer = preflight_from(&p, "http://x.com");
    assert_eq!(
        lines(&answer.headers),
        [
            "access-control-allow-origin: http://www.example.com",
            "vary: Origin",
            "access-control-allow-methods: HEAD,PUT,PATCH,POST,DELETE",
            "access-control-allow-headers: X-TEST",
            "content-length: 0",
        ]
    );
    let mut response = HeaderMap::new();
    p.apply(
        &Method::GET,
        &request(&[("origin", "http://x.com")]),
        &mut response,
    );
    assert_eq!(
        lines(&response),
        [
            "access-control-allow-origin: http://www.example.com",
            "vary: Origin"
        ]
    );
}

#[test]
fn origin_as_regexp_echoes_a_match_and_leaves_others_out() {
    let p = eg_test_action(regexes(&[r"http://www\.example\.com"]));
    let good = preflight_from(&p, "http://www.example.com");
    assert_eq!(
        good.headers["access-control-allow-origin"],
        "http://www.example.com"
    );
    assert_eq!(
        good.headers["access-control-allow-methods"],
        "HEAD,PUT,PATCH,POST,DELETE"
    );
    assert_eq!(good.headers["access-control-allow-headers"], "X-TEST");
    let bad = preflight_from(&p, "http://www.bad.com");
    assert_eq!(bad.status, StatusCode::NO_CONTENT);
    assert!(!bad.headers.contains_key("access-control-allow-origin"));
    assert_eq!(bad.headers["access-control-allow-headers"], "X-TEST");
    assert_eq!(bad.headers["vary"], "Origin");
    // Unanchored, as RegExp.test.
    assert!(
        preflight_from(&p, "https://evil.com?http://www.example.com")
            .headers
            .contains_key("access-control-allow-origin")
    );
}

#[test]
fn origin_as_array_of_strings_and_of_regexps() {
    for p in [
        eg_test_action(exact(&[
            "http://www.example.com",
            "http://www.example2.com",
        ])),
        eg_test_action(regexes(&[
            r"http://www\.example\.com",
            r"http://www\.example2\.com",
        ])),
    ] {
        let good = preflight_from(&p, "http://www.example2.com");
        assert_eq!(
            good.headers["access-control-allow-origin"],
            "http://www.example2.com"
        );
        let bad = preflight_from(&p, "http://www.bad.com");
        assert!(!bad.headers.contains_key("access-control-allow-origin"));
        assert_eq!(
            bad.headers["access-control-allow-methods"],
            "HEAD,PUT,PATCH,POST,DELETE"
        );
    }
    // Exact strings are exact: case and prefixes differ.
    let p = eg_test_action(exact(&["http://www.example.com"]));
    assert!(!preflight_from(&p, "http://WWW.example.com")
        .headers
        .contains_key("access-control-allow-origin"));
}

#[test]
fn a_bad_pattern_or_value_is_refused_when_made_ready() {
    let e = CorsPolicy::new(&CorsSpec {
        origin: regexes(&["(unclosed"]),
        ..CorsSpec::default()
    })
    .unwrap_err();
    assert!(matches!(e, CorsError::BadPattern { .. }), "{e}");
    let e = CorsPolicy::new(&CorsSpec {
        exposed_headers: vec!["X-A\r\nSet-Cookie: a=b".into()],
        ..CorsSpec::default()
    })
    .unwrap_err();
    assert!(matches!(e, CorsError::BadHeaderValue { .. }), "{e}");
    let e = CorsPolicy::new(&CorsSpec {
        origin: exact(&["https://b\u{fc}cher.example"]),
        ..CorsSpec::default()
    })
    .unwrap_err();
    assert!(e.to_string().contains("xn--"), "{e}");
    for status in [0, 99, 100, 1000] {
        let e = CorsPolicy::new(&CorsSpec {
            preflight_status: status,
            ..CorsSpec::default()
        })
        .unwrap_err();
        assert_eq!(e, CorsError::BadStatus(status));
    }
}

#[test]
fn list_with_credentials_max_age_and_exposed_headers_in_npm_order() {
    let p = eg(CorsSpec {
        origin: CorsOrigin::List(vec![
            OriginPattern::Exact("http://a.com".into()),
            OriginPattern::Regex(r"b\.com$".into()),
        ]),
        credentials: true,
        exposed_headers: vec!["X-A".into(), "X-B".into()],
        max_age: Some(0),
        ..CorsSpec::default()
    });
    let answer = p
        .preflight(
            &Method::OPTIONS,
            &request(&[
                ("origin", "http://a.com"),
                ("access-control-request-headers", "x"),
            ]),
        )
        .unwrap();
    assert_eq!(
        lines(&answer.headers),
        [
            "access-control-allow-origin: http://a.com",
            "vary: Origin, Access-Control-Request-Headers",
            "access-control-allow-credentials: true",
            "access-control-allow-methods: GET,HEAD,PUT,PATCH,POST,DELETE",
            "access-control-allow-headers: x",
            "access-control-max-age: 0",
            "access-control-expose-headers: X-A,X-B",
            "content-length: 0",
        ]
    );
    // An actual request from a disallowed origin: credentials and exposed headers still go
    // (npm), the origin does not.
    let mut response = request(&[("vary", "Accept")]);
    p.apply(
        &Method::GET,
        &request(&[("origin", "http://bad.com")]),
        &mut response,
    );
    assert_eq!(
        lines(&response),
        [
            "vary: Accept, Origin",
            "access-control-allow-credentials: true",
            "access-control-expose-headers: X-A,X-B",
        ]
    );
}

#[test]
fn credentials_never_go_with_a_wildcard_origin() {
    let p = eg(CorsSpec {
        credentials: true,
        exposed_headers: vec!["X-A".into()],
        ..CorsSpec::default()
    });
    let answer = preflight_from(&p, "http://a.com");
    assert!(!answer
        .headers
        .contains_key("access-control-allow-credentials"));
    let mut response = HeaderMap::new();
    p.apply(
        &Method::GET,
        &request(&[("origin", "http://a.com")]),
        &mut response,
    );
    assert_eq!(
        lines(&response),
        [
            "access-control-allow-origin: *",
            "access-control-expose-headers: X-A"
        ]
    );
    // Reflecting (origin: true) keeps credentials: the origin is specific.
    let p = eg(CorsSpec {
        origin: CorsOrigin::Reflect,
        credentials: true,
        ..CorsSpec::default()
    });
    let mut response = HeaderMap::new();
    p.apply(
        &Method::GET,
        &request(&[("origin", "http://a.com")]),
        &mut response,
    );
    assert_eq!(
        lines(&response),
        [
            "access-control-allow-origin: http://a.com",
            "vary: Origin",
            "access-control-allow-credentials: true",
        ]
    );
}

#[test]
fn reflect_without_an_origin_sends_only_vary() {
    let p = eg(CorsSpec {
        origin: CorsOrigin::Reflect,
        ..CorsSpec::default()
    });
    let mut response = HeaderMap::new();
    p.apply(&Method::GET, &HeaderMap::new(), &mut response);
    assert_eq!(lines(&response), ["vary: Origin"]);
}

#[test]
fn disabled_does_nothing_at_all() {
    for origin in [CorsOrigin::Disabled, CorsOrigin::Fixed(String::new())] {
        let p = eg(CorsSpec {
            origin,
            ..CorsSpec::default()
        });
        assert!(!p.is_active());
        assert!(p.preflight(&Method::OPTIONS, &HeaderMap::new()).is_none());
        let mut response = HeaderMap::new();
        p.apply(
            &Method::GET,
            &request(&[("origin", "http://a.com")]),
            &mut response,
        );
        assert!(response.is_empty());
    }
}

#[test]
fn an_empty_allowed_headers_list_sends_neither_the_header_nor_vary() {
    let p = eg(CorsSpec {
        allowed_headers: Some(vec![]),
        ..CorsSpec::default()
    });
    let answer = p
        .preflight(
            &Method::OPTIONS,
            &request(&[("access-control-request-headers", "q")]),
        )
        .unwrap();
    assert_eq!(
        lines(&answer.headers),
        [
            "access-control-allow-origin: *",
            "access-control-allow-methods: GET,HEAD,PUT,PATCH,POST,DELETE",
            "content-length: 0",
        ]
    );
}

#[test]
fn preflight_continue_passes_on_and_the_response_gets_the_preflight_headers() {
    let p = eg(CorsSpec {
        preflight_continue: true,
        ..CorsSpec::default()
    });
    let req = request(&[
        ("origin", "http://a.com"),
        ("access-control-request-headers", "q"),
    ]);
    assert!(p.preflight(&Method::OPTIONS, &req).is_none());
    let mut response = request(&[("content-type", "text/html; charset=utf-8")]);
    p.apply(&Method::OPTIONS, &req, &mut response);
    assert_eq!(
        lines(&response),
        [
            "content-type: text/html; charset=utf-8",
            "access-control-allow-origin: *",
            "access-control-allow-methods: GET,HEAD,PUT,PATCH,POST,DELETE",
            "vary: Access-Control-Request-Headers",
            "access-control-allow-headers: q",
        ]
    );
}

#[test]
fn upstream_cors_headers_win_and_vary_is_merged_once() {
    let p = eg(CorsSpec {
        origin: CorsOrigin::Reflect,
        ..CorsSpec::default()
    });
    let req = request(&[("origin", "http://a.com")]);
    let mut response = request(&[
        ("access-control-allow-origin", "http://upstream.example"),
        ("vary", "accept-encoding"),
        ("vary", "ORIGIN"),
    ]);
    p.apply(&Method::GET, &req, &mut response);
    assert_eq!(
        lines(&response),
        [
            "access-control-allow-origin: http://upstream.example",
            "vary: accept-encoding, ORIGIN",
        ]
    );
    // Applying twice (the step that answered runs its response phase too) changes nothing.
    let once = response.clone();
    p.apply(&Method::GET, &req, &mut response);
    assert_eq!(response, once);
    let mut star = request(&[("vary", "*")]);
    p.apply(&Method::GET, &req, &mut star);
    assert_eq!(star["vary"], "*");
}

#[test]
fn vary_append_follows_the_vary_package() {
    assert_eq!(vary_append("", "Origin").as_deref(), Some("Origin"));
    assert_eq!(
        vary_append("Accept", "Origin").as_deref(),
        Some("Accept, Origin")
    );
    assert_eq!(vary_append("origin", "Origin").as_deref(), Some("origin"));
    assert_eq!(vary_append("Accept", "*").as_deref(), Some("*"));
    assert_eq!(vary_append("*", "Origin").as_deref(), Some("*"));
    assert_eq!(
        vary_append("Accept", "Origin, Accept,X").as_deref(),
        Some("Accept, Origin, X")
    );
    assert_eq!(vary_append("", ""), None);
}

#[test]
fn repeated_request_headers_are_joined_as_node_does() {
    let p = eg(CorsSpec::default());
    let answer = p
        .preflight(
            &Method::OPTIONS,
            &request(&[
                ("access-control-request-headers", "a"),
                ("access-control-request-headers", "b"),
            ]),
        )
        .unwrap();
    assert_eq!(answer.headers["access-control-allow-headers"], "a, b");
}

// ---- WSO2 (Ballerina 1.2 CorsHeaderGenerator) ----

/// The fixture `cors_cors_sample.yaml`'s `x-wso2-cors`.
fn wso2_sample() -> CorsPolicy {
    CorsPolicy::new(&CorsSpec {
        dialect: Dialect::Wso2,
        origin: exact(&["http://www.m3.com"]),
        methods: vec!["GET".into(), "PUT".into(), "POST".into()],
        allowed_headers: Some(vec!["Authorization".into(), "Content-Type".into()]),
        exposed_headers: vec!["X-CUSTOM-HEADER".into()],
        credentials: true,
        max_age: None,
        preflight_status: 200,
        preflight_continue: false,
    })
    .unwrap()
}

#[test]
fn wso2_actual_request_from_an_allowed_origin_gets_origin_credentials_exposed() {
    // WSO2's CorsTestCase: GET with Origin http://www.m3.com.
    let p = wso2_sample();
    let mut response = request(&[
        ("access-control-allow-origin", "*"),
        ("content-type", "application/json"),
    ]);
    p.apply(
        &Method::GET,
        &request(&[("origin", "http://www.m3.com")]),
        &mut response,
    );
    assert_eq!(
        lines(&response),
        [
            "access-control-allow-origin: http://www.m3.com",
            "content-type: application/json",
            "access-control-allow-credentials: true",
            "vary: Origin",
            "access-control-expose-headers: X-CUSTOM-HEADER",
        ]
    );
}

#[test]
fn wso2_disallowed_or_missing_origin_gets_no_cors_header() {
    let p = wso2_sample();
    for origin in [
        Some("http://www.bad.com"),
        Some("null"),
        Some("http://www.m3.com http://www.bad.com"),
        None,
    ] {
        let req = match origin {
            Some(o) => request(&[("origin", o)]),
            None => HeaderMap::new(),
        };
        let mut response = HeaderMap::new();
        p.apply(&Method::GET, &req, &mut response);
        assert!(response.is_empty(), "{origin:?}: {response:?}");
    }
}

#[test]
fn wso2_wildcard_reflects_the_origin_never_star() {
    let p = CorsPolicy::new(&CorsSpec {
        credentials: true,
        ..CorsSpec::wso2_default()
    })
    .unwrap();
    let mut response = HeaderMap::new();
    p.apply(
        &Method::POST,
        &request(&[("origin", "https://app.example")]),
        &mut response,
    );
    assert_eq!(
        response["access-control-allow-origin"],
        "https://app.example"
    );
    assert_eq!(response["access-control-allow-credentials"], "true");
    assert_eq!(
        response["access-control-expose-headers"],
        "Access-Control-Expose-Headers, Content-Type"
    );
}

#[test]
fn wso2_preflight_echoes_method_and_headers_with_200() {
    let p = wso2_sample();
    let answer = p
        .preflight(
            &Method::OPTIONS,
            &request(&[
                ("origin", "http://www.m3.com"),
                ("access-control-request-method", "POST"),
                (
                    "access-control-request-headers",
                    "authorization, content-type",
                ),
            ]),
        )
        .unwrap();
    assert!(answer.granted);
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        lines(&answer.headers),
        [
            "access-control-allow-credentials: true",
            "access-control-allow-origin: http://www.m3.com",
            "vary: Origin",
            "access-control-allow-methods: POST",
            "access-control-allow-headers: authorization, content-type",
            "content-length: 0",
        ]
    );
    // The preflight's own response phase adds nothing.
    let mut headers = answer.headers.clone();
    p.apply(
        &Method::OPTIONS,
        &request(&[
            ("origin", "http://www.m3.com"),
            ("access-control-request-method", "POST"),
        ]),
        &mut headers,
    );
    assert_eq!(headers, answer.headers);
}

#[test]
fn wso2_preflight_refused_is_200_without_cors_headers() {
    let p = wso2_sample();
    for pairs in [
        // origin not allowed
        vec![
            ("origin", "http://www.bad.com"),
            ("access-control-request-method", "GET"),
        ],
        // method not allowed
        vec![
            ("origin", "http://www.m3.com"),
            ("access-control-request-method", "DELETE"),
        ],
        // method case-sensitive
        vec![
            ("origin", "http://www.m3.com"),
            ("access-control-request-method", "get"),
        ],
        // more than one method
        vec![
            ("origin", "http://www.m3.com"),
            ("access-control-request-method", "GET,PUT"),
        ],
        // a header not allowed
        vec![
            ("origin", "http://www.m3.com"),
            ("access-control-request-method", "GET"),
            ("access-control-request-headers", "authorization,x-other"),
        ],
        // two origins
        vec![
            ("origin", "http://www.m3.com http://www.m3.com"),
            ("access-control-request-method", "GET"),
        ],
    ] {
        let answer = p.preflight(&Method::OPTIONS, &request(&pairs)).unwrap();
        assert!(!answer.granted, "{pairs:?}");
        assert_eq!(answer.status, StatusCode::OK);
        assert_eq!(lines(&answer.headers), ["content-length: 0"], "{pairs:?}");
    }
    // Not a CORS preflight: the pipeline goes on.
    assert!(p
        .preflight(
            &Method::OPTIONS,
            &request(&[("origin", "http://www.m3.com")])
        )
        .is_none());
    assert!(p
        .preflight(
            &Method::OPTIONS,
            &request(&[("access-control-request-method", "GET")])
        )
        .is_none());
    assert!(p
        .preflight(
            &Method::GET,
            &request(&[
                ("origin", "http://www.m3.com"),
                ("access-control-request-method", "GET")
            ])
        )
        .is_none());
}

#[test]
fn wso2_any_method_and_any_header_when_unset() {
    let p = CorsPolicy::new(&CorsSpec {
        dialect: Dialect::Wso2,
        origin: CorsOrigin::Any,
        methods: vec![],
        allowed_headers: None,
        exposed_headers: vec![],
        credentials: false,
        max_age: Some(600),
        preflight_status: 200,
        preflight_continue: false,
    })
    .unwrap();
    let answer = p
        .preflight(
            &Method::OPTIONS,
            &request(&[
                ("origin", "https://a.example"),
                ("access-control-request-method", "PURGE"),
                ("access-control-request-headers", "x-anything"),
            ]),
        )
        .unwrap();
    assert_eq!(
        lines(&answer.headers),
        [
            "access-control-allow-origin: https://a.example",
            "vary: Origin",
            "access-control-allow-methods: PURGE",
            "access-control-allow-headers: x-anything",
            "access-control-max-age: 600",
            "content-length: 0",
        ]
    );
}

#[test]
fn wso2_allow_lists_the_methods_head_after_get_and_options() {
    assert_eq!(wso2_allow(["GET", "POST"]), "GET, POST, HEAD, OPTIONS");
    assert_eq!(wso2_allow(["PUT", "PUT"]), "PUT, OPTIONS");
    assert_eq!(wso2_allow([]), "OPTIONS");
}
