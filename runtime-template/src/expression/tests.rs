use std::net::{IpAddr, Ipv4Addr};

use super::*;

fn parts(uri: &str, headers: &[(&str, &[u8])]) -> http::request::Parts {
    let mut builder = http::Request::builder().method("POST").uri(uri);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(()).unwrap().into_parts().0
}

const IP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3));

fn eval_with(source: &str, scope: &RequestScope<'_>) -> String {
    let expression = Expression::parse(source).unwrap_or_else(|e| panic!("{source}: {e}"));
    let value = expression
        .eval(scope)
        .unwrap_or_else(|e| panic!("{source}: {e}"));
    value.to_js_string().into_owned()
}

fn eval_plain(source: &str) -> String {
    let parts = parts(
        "/wms/a%20b?SERVICE=WMS&x=1+2&x=3&e=%E2%82%AC&bad=%zz+y",
        &[
            ("host", b"Maps.Example.com:8080"),
            ("x-forwarded-for", b"1.1.1.1"),
            ("x-forwarded-for", b"2.2.2.2"),
            ("authorization", b"Bearer a"),
            ("authorization", b"Bearer b"),
            ("cookie", b"a=1"),
            ("cookie", b"b=2"),
            ("x-latin", b"caf\xe9"),
        ],
    );
    let scopes = ["wms".to_string(), "admin".to_string()];
    let consumer = ConsumerInfo {
        id: "app-42",
        kind: Some("application"),
        username: None,
        name: Some("k2app"),
        fields: &[("userId", "u-1")],
    };
    let mut scope = RequestScope::new(&parts, IP);
    scope.request_id = "3Lb4Yq";
    scope.api_endpoint = "wms";
    scope.scopes = &scopes;
    scope.consumer = Some(&consumer);
    eval_with(source, &scope)
}

#[test]
fn literals_and_kargo_basic() {
    // Kargo's response-transformer: `WWW-Authenticate: "'Basic'"`.
    assert_eq!(eval_plain("'Basic'"), "Basic");
    // EG's modifier test values.
    assert_eq!(eval_plain("\"world\""), "world");
    assert_eq!(eval_plain("\"baffino\""), "baffino");
    assert_eq!(
        eval_plain("'it\\'s \\x41\\u0042\\u{43} \\t'"),
        "it's ABC \t"
    );
    assert_eq!(eval_plain("'\\uD83D\\uDE00'"), "😀");
    assert_eq!(eval_plain("1"), "1");
    assert_eq!(eval_plain("1.5"), "1.5");
    assert_eq!(eval_plain("0x10"), "16");
    assert_eq!(eval_plain("1e21"), "1e+21");
    assert_eq!(eval_plain(".5"), "0.5");
    assert_eq!(eval_plain("true"), "true");
    assert_eq!(eval_plain("null"), "null");
    assert_eq!(eval_plain("undefined"), "undefined");
    assert_eq!(eval_plain("`plain`"), "plain");
    assert_eq!(eval_plain("``"), "");
}

#[test]
fn concatenation_follows_javascript() {
    assert_eq!(
        eval_plain("'Bearer ' + req.headers.authorization"),
        "Bearer Bearer a"
    );
    assert_eq!(eval_plain("'n' + 1 + 2"), "n12");
    assert_eq!(eval_plain("1 + 2 + 'n'"), "3n");
    assert_eq!(eval_plain("1 + 1.5"), "2.5");
    assert_eq!(eval_plain("'x' + req.headers.missing"), "xundefined");
    assert_eq!(eval_plain("'x' + null + true"), "xnulltrue");
    assert_eq!(eval_plain("true + 1"), "2");
    assert_eq!(eval_plain("undefined + 1"), "NaN");
    assert_eq!(eval_plain("'h:' + req.headers"), "h:[object Object]");
    assert_eq!(eval_plain("-'3' + +'4'"), "1");
}

#[test]
fn logic_and_comparison() {
    assert_eq!(eval_plain("req.headers.missing || 'default'"), "default");
    assert_eq!(eval_plain("req.headers['x-latin'] || 'default'"), "café");
    assert_eq!(eval_plain("req.headers.missing && 'x'"), "undefined");
    assert_eq!(eval_plain("'' ?? 'x'"), "");
    assert_eq!(eval_plain("req.headers.missing ?? 'x'"), "x");
    assert_eq!(
        eval_plain("req.method === 'POST' ? 'write' : 'read'"),
        "write"
    );
    assert_eq!(eval_plain("req.method !== 'POST'"), "false");
    assert_eq!(eval_plain("req.secure == false"), "true");
    assert_eq!(eval_plain("'1' == 1"), "true");
    assert_eq!(eval_plain("'1' === 1"), "false");
    assert_eq!(eval_plain("!req.user"), "false");
    assert_eq!(eval_plain("!!req.headers.missing"), "false");
    assert_eq!(eval_plain("(1 + 2) + ''"), "3");
    assert_eq!(eval_plain("true ? false ? 1 : 2 : 3"), "2");
    assert_eq!(eval_plain("req.user ?.5 : 1"), "0.5");
}

#[test]
fn request_lookups() {
    assert_eq!(eval_plain("req.ip"), "10.1.2.3");
    assert_eq!(eval_plain("req.hostname"), "Maps.Example.com");
    assert_eq!(eval_plain("req.host"), "Maps.Example.com");
    assert_eq!(eval_plain("req.headers.host"), "Maps.Example.com:8080");
    assert_eq!(eval_plain("req.method"), "POST");
    let url = "/wms/a%20b?SERVICE=WMS&x=1+2&x=3&e=%E2%82%AC&bad=%zz+y";
    assert_eq!(eval_plain("req.url"), url);
    assert_eq!(eval_plain("req.originalUrl"), url);
    assert_eq!(eval_plain("egContext.req.url"), url);
    assert_eq!(eval_plain("req.path"), "/wms/a%20b");
    assert_eq!(eval_plain("req.protocol"), "http");
    assert_eq!(eval_plain("req.query.SERVICE"), "WMS");
    assert_eq!(eval_plain("req.query.service"), "undefined");
    assert_eq!(eval_plain("req.query.x"), "1 2,3");
    assert_eq!(eval_plain("req.query.e"), "€");
    assert_eq!(eval_plain("req.query.bad"), "%zz y");
    assert_eq!(eval_plain("req.query"), "[object Object]");
}

#[test]
fn headers_read_as_node_joins_them() {
    // Case-insensitive, unlike Node's lower-case keys (documented difference).
    assert_eq!(
        eval_plain("req.headers['X-Forwarded-For']"),
        "1.1.1.1, 2.2.2.2"
    );
    assert_eq!(
        eval_plain("req.headers['x-forwarded-for']"),
        "1.1.1.1, 2.2.2.2"
    );
    // Node keeps the first of repeated single headers and joins cookies with "; ".
    assert_eq!(eval_plain("req.headers.authorization"), "Bearer a");
    assert_eq!(eval_plain("req.headers.cookie"), "a=1; b=2");
    // Bytes are Latin-1.
    assert_eq!(eval_plain("req.headers['x-latin']"), "café");
    assert_eq!(eval_plain("req.headers['not a header']"), "undefined");
}

#[test]
fn context_lookups() {
    assert_eq!(eval_plain("requestID"), "3Lb4Yq");
    assert_eq!(eval_plain("egContext.requestID"), "3Lb4Yq");
    assert_eq!(eval_plain("req.egContext.egContext.requestID"), "3Lb4Yq");
    assert_eq!(eval_plain("egContext.apiEndpoint.apiEndpointName"), "wms");
    assert_eq!(eval_plain("apiEndpoint.scopes"), "wms,admin");
    assert_eq!(eval_plain("egContext.consumer.id"), "app-42");
    assert_eq!(eval_plain("consumer.type"), "application");
    assert_eq!(eval_plain("req.user.name"), "k2app");
    assert_eq!(eval_plain("req.user.userId"), "u-1");
    assert_eq!(eval_plain("req.user.username"), "undefined");
    assert_eq!(eval_plain("req.user.username?.x"), "undefined");
    assert_eq!(eval_plain("res.statusCode"), "200");
}

#[test]
fn anonymous_consumer_fields_raise_a_type_error() {
    let parts = parts("/", &[]);
    let scope = RequestScope::new(&parts, IP);
    let e = Expression::parse("req.user.id").unwrap();
    assert_eq!(
        e.eval(&scope).unwrap_err().message,
        "Cannot read properties of undefined (reading 'id')"
    );
    assert_eq!(eval_with("req.user?.id", &scope), "undefined");
    assert_eq!(eval_with("req.user", &scope), "undefined");
    assert_eq!(
        eval_with("req.user ? req.user.id : 'anonymous'", &scope),
        "anonymous"
    );
    let consumer = ConsumerInfo {
        id: "x",
        ..Default::default()
    };
    let mut scope = scope;
    scope.consumer = Some(&consumer);
    assert!(Expression::parse("req.user.missing.deeper")
        .unwrap()
        .eval(&scope)
        .is_err());
    assert_eq!(eval_with("req.user.missing?.deeper", &scope), "undefined");
}

#[test]
fn jwt_payload_consumer() {
    let claims: serde_json::Value = serde_json::json!({
        "sub": "kid1", "aud": ["a", "b"], "realm": {"roles": ["r1"]}, "n": 3, "nil": null
    });
    let serde_json::Value::Object(claims) = claims else {
        unreachable!()
    };
    let parts = parts("/", &[]);
    let mut scope = RequestScope::new(&parts, IP);
    scope.consumer = Some(&claims);
    assert_eq!(eval_with("req.user.sub", &scope), "kid1");
    assert_eq!(eval_with("req.user.aud", &scope), "a,b");
    assert_eq!(eval_with("req.user.realm.roles", &scope), "r1");
    assert_eq!(eval_with("req.user.realm", &scope), "[object Object]");
    assert_eq!(eval_with("req.user.n + 1", &scope), "4");
    assert_eq!(eval_with("req.user.aud[1]", &scope), "b");
    assert_eq!(eval_with("req.user.sub.x", &scope), "undefined");
    assert!(Expression::parse("req.user.nil.x")
        .unwrap()
        .eval(&scope)
        .is_err());
    assert!(Expression::parse("req.user.none.x")
        .unwrap()
        .eval(&scope)
        .is_err());
}

#[test]
fn templates_as_log_messages() {
    // EG test/policies/log: '${req.url} ${egContext.req.method}' and '${requestID}'.
    let parts = parts("/test", &[]);
    let mut scope = RequestScope::new(&parts, IP);
    scope.request_id = "2ZkdCNakHDrqzSXKzJ5WXa";
    let render = |text: &str| {
        Expression::parse_template(text)
            .unwrap()
            .eval_string(&scope)
            .unwrap()
            .into_owned()
    };
    assert_eq!(render("${req.url} ${egContext.req.method}"), "/test POST");
    assert_eq!(render("${requestID}"), "2ZkdCNakHDrqzSXKzJ5WXa");
    assert_eq!(render("${egContext.requestID}"), "2ZkdCNakHDrqzSXKzJ5WXa");
    assert_eq!(render("plain message"), "plain message");
    assert_eq!(render(""), "");
    assert_eq!(render("a $ {b} \\${c} $"), "a $ {b} ${c} $");
    assert_eq!(render("${`nested ${req.method}`}!"), "nested POST!");
    assert_eq!(render("${req.headers.missing}"), "undefined");
    assert_eq!(render("line\r\nbreak"), "line\nbreak");
    // What evaluateAsTemplateString does with a backtick in the text: `a` + `b`.
    assert_eq!(render("a` + `b"), "ab");
    // `rateLimitBy: "${req.hostname}"` (EG rate-limit by host test).
    assert_eq!(render("${req.hostname}"), "undefined");
}

fn error(source: &str) -> ExpressionError {
    match Expression::parse(source) {
        Ok(e) => panic!("{source} parsed: {e:?}"),
        Err(e) => e,
    }
}

#[test]
fn unsupported_javascript_is_refused_with_its_column() {
    let cases: &[(&str, usize, &str)] = &[
        ("process.exit(1)", 1, "unknown name `process`"),
        (
            "req.get('host')",
            8,
            "function calls are not supported (`get(...)`): read req.headers",
        ),
        ("req.url = '/x'", 9, "assignments are not supported"),
        (
            "req.url + '/67' ; res.test",
            17,
            "statements are not supported",
        ),
        ("req.foo", 5, "req.foo is not supported"),
        (
            "req.headers.host.length",
            18,
            "reading `length` of req.headers.host is not supported",
        ),
        ("req.ip.x", 8, "reading `x` of req.ip"),
        ("res.test", 5, "res.test is not supported"),
        ("egContext.run", 11, "egContext.run is not supported"),
        (
            "apiEndpoint.paths",
            13,
            "apiEndpoint.paths is not supported",
        ),
        (
            "req.headers[req.method]",
            12,
            "computed property names must be string literals",
        ),
        ("1 - 2", 3, "the operator `-` is not supported"),
        ("a * 2", 1, "unknown name `a`"),
        ("1 * 2", 3, "the operator `*` is not supported"),
        ("'a' < 'b'", 5, "the operator `<` is not supported"),
        ("'unclosed", 1, "this string is not closed"),
        ("`${req.url`", 11, "a `${` substitution is not closed"),
        (
            "'a'.length",
            4,
            "properties can only be read from the globals",
        ),
        ("(req.url", 9, "expected `)`"),
        ("", 1, "the expression is empty"),
        ("typeof req", 1, "`typeof` is not supported"),
        ("this.req", 1, "`this` is not supported"),
        ("010", 1, "legacy octal"),
        ("'\\1'", 2, "legacy octal escapes"),
        ("10n", 3, "BigInt"),
        ("req.url // comment", 9, "comments are not supported"),
        ("new Date()", 1, "`new` is not supported"),
        ("Date.now()", 1, "unknown name `Date`"),
        ("x => 1", 1, "unknown name `x`"),
        ("true.x", 6, "reading a property of `true`"),
        ("'é' + é", 7, "unexpected `é`"),
        ("req.url++", 8, "assignments are not supported"),
        ("'\\uD800'", 2, "lone surrogate"),
    ];
    for (source, column, message) in cases {
        let e = error(source);
        assert!(
            e.message.contains(message),
            "{source}: {:?} does not contain {message:?}",
            e.message
        );
        assert_eq!(e.column, *column, "{source}: {}", e.message);
    }
    // Arbitrary JavaScript from EG's expression policy test.
    assert!(Expression::parse("req.url = req.url + \"/67\" ; res.test = res.test + 68;").is_err());
}

#[test]
fn template_errors_count_columns_in_the_message_text() {
    let e = Expression::parse_template("ok ${process.exit(1)}").unwrap_err();
    assert_eq!(e.column, 6);
    assert!(e.message.contains("unknown name `process`"));
    let e = Expression::parse_template("${req.url").unwrap_err();
    assert!(e.message.contains("not closed"), "{}", e.message);
    let e = Expression::parse_template("a`b").unwrap_err();
    assert_eq!(e.column, 3, "{}", e.message);
}

#[test]
fn nesting_is_bounded() {
    let deep = format!("{}1{}", "(".repeat(10_000), ")".repeat(10_000));
    assert!(error(&deep).message.contains("nests too deeply"));
    let bangs = format!("{}1", "!".repeat(10_000));
    assert!(error(&bangs).message.contains("nests too deeply"));
    let templates = format!("{}1{}", "`${".repeat(5_000), "}`".repeat(5_000));
    assert!(error(&templates).message.contains("nests too deeply"));
    let fine = format!("{}1{}", "(".repeat(50), ")".repeat(50));
    assert_eq!(eval_plain(&fine), "1");
}

#[test]
fn constants_are_known_before_any_request() {
    assert_eq!(
        Expression::parse("'Basic'").unwrap().constant(),
        Some(Value::Str("Basic".into()))
    );
    assert_eq!(
        Expression::parse("'a' + 1").unwrap().constant(),
        Some(Value::Str("a1".into()))
    );
    assert_eq!(Expression::parse("req.ip").unwrap().constant(), None);
    assert_eq!(Expression::parse("`${req.ip}`").unwrap().constant(), None);
}

#[test]
fn ipv6_hosts_and_h2_authority() {
    let p = parts("/", &[("host", b"[::1]:8443")]);
    assert_eq!(
        eval_with("req.hostname", &RequestScope::new(&p, IP)),
        "[::1]"
    );
    let p = http::Request::builder()
        .uri("https://h2.example:9095/x?y=1")
        .body(())
        .unwrap()
        .into_parts()
        .0;
    let mut scope = RequestScope::new(&p, IP);
    scope.secure = true;
    assert_eq!(eval_with("req.hostname", &scope), "h2.example");
    assert_eq!(eval_with("req.url", &scope), "/x?y=1");
    assert_eq!(eval_with("req.protocol", &scope), "https");
    let v6: IpAddr = "2001:db8::1".parse().unwrap();
    assert_eq!(
        eval_with("req.ip", &RequestScope::new(&p, v6)),
        "2001:db8::1"
    );
}

#[test]
fn request_text_with_multibyte_characters_never_panics() {
    // Header values and query parameters reach ToNumber through `==` and unary `+`.
    let parts = parts(
        "/?q=a%C3%A9",
        &[("x-v", "aé".as_bytes()), ("x-w", b"0x\xc3\xa9")],
    );
    let scope = RequestScope::new(&parts, IP);
    for source in [
        "req.headers['x-v'] == 1",
        "+req.headers['x-w']",
        "-req.query.q",
        "req.query.q == 0",
        "req.hostname",
    ] {
        Expression::parse(source).unwrap().eval(&scope).unwrap();
    }
    assert_eq!(eval_with("+req.headers['x-v']", &scope), "NaN");
}
