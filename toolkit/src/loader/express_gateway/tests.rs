use super::StoreMapping;
use super::*;
use crate::loader::{load_project, ConfPorts, ExpressSource, LoadOptions, SourceFile};
use mgw_runtime::model::policy::PolicySpec;
use mgw_runtime::policies::cors::CorsOrigin;
use mgw_runtime::policies::proxy::{EndpointChoice, PathRewrite};
use mgw_runtime::policies::unsupported::UnsupportedBehaviour;

const FILE: &str = "express-gateway/gateway.config.yml";

fn source(text: &str) -> ExpressSource {
    ExpressSource {
        gateway: SourceFile {
            name: FILE.into(),
            text: text.into(),
        },
        system: None,
    }
}

fn load_eg(text: &str, allow: bool) -> Result<crate::loader::Loaded, crate::loader::Failed> {
    load_project(
        "p",
        &[],
        Some(&source(text)),
        &LoadOptions {
            allow_unsupported: allow,
            ports: None,
            cors_default: None,
            policies: None,
            validation: Default::default(),
        },
    )
}

fn ok(text: &str) -> crate::loader::Loaded {
    match load_eg(text, false) {
        Ok(l) => l,
        Err(f) => panic!("{}", f.error),
    }
}

fn errors(text: &str) -> Vec<String> {
    load_eg(text, false)
        .map(|_| panic!("expected errors"))
        .unwrap_err()
        .error
        .errors
        .iter()
        .map(ToString::to_string)
        .collect()
}

const BASE: &str = "http:\n  port: 8080\nserviceEndpoints:\n  b:\n    url: 'http://backend:81/base'\npolicies: [proxy, cors, terminate, log, request-transformer, response-transformer, headers, jwt, basic-auth, scopes, metrics, rate-limit, oauth2, expression, my-plugin]\n";

#[test]
fn listeners_keep_settings_raw() {
    let text = format!(
        "{BASE}https:\n  port: ${{EG_HTTPS_PORT:-8443}}\n  hostname: ${{HOST:-0.0.0.0}}\n  tls:\n    '*.example.com': {{key: k1.pem, cert: c1.pem}}\n    default: {{key: '${{KEY}}', cert: c.pem, ca: [ca.pem]}}\nadmin:\n  port: 9876\n  host: localhost\n"
    );
    let l = ok(&text);
    let eg = &l.model.express[0];
    assert_eq!(eg.source, FILE);
    assert_eq!(eg.http.as_ref().unwrap().port, "8080");
    let https = eg.https.as_ref().unwrap();
    assert_eq!(https.listen.port, "${EG_HTTPS_PORT:-8443}");
    assert_eq!(https.listen.host.as_deref(), Some("${HOST:-0.0.0.0}"));
    assert_eq!(https.certificates.len(), 2);
    assert_eq!(https.certificates[0].pattern, "*.example.com");
    assert_eq!(https.certificates[1].key, "${KEY}");
    assert_eq!(https.certificates[1].ca, ["ca.pem"]);
    let admin = eg.admin.as_ref().unwrap();
    assert_eq!(
        (admin.port.as_str(), admin.host.as_deref()),
        ("9876", Some("localhost"))
    );
    // A port that is not one, even by default, is refused at build with its line.
    let bad = errors("http:\n  port: ${P:-eighty}\n");
    assert!(
        bad[0].starts_with(&format!("{FILE}:2:")) && bad[0].contains("is not a port"),
        "{bad:?}"
    );
    let unclosed = errors("http:\n  port: ${P:-80\n");
    assert!(unclosed[0].contains("is not closed"), "{unclosed:?}");
}

#[test]
fn api_endpoints_all_forms_grouped_by_host_in_first_appearance_order() {
    let text = format!(
        "{BASE}apiEndpoints:\n  a:\n    host: api.example.com\n    paths: ['/a', '/a/*']\n    methods: 'get, POST'\n    scopes: [read, {{scope: write}}]\n  b:\n    path: /b\n    methods: '*'\n  c:\n    - host: api.example.com\n      pathRegex: '^/c[0-9]+$'\n      methods: [PUT]\n    - hostRegex: '^x\\.'\n  d: {{}}\npipelines:\n  p:\n    apiEndpoints: [a, b, c, d]\n    policies:\n      - proxy:\n          - action: {{serviceEndpoint: b}}\n"
    );
    let l = ok(&text);
    let routes = &l.model.express[0].routes;
    let summary: Vec<(String, String, String)> = routes
        .iter()
        .map(|r| {
            (
                r.api_endpoint.clone(),
                format!("{:?}", r.host),
                format!("{:?}", r.path),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                "a".into(),
                "Vhost(\"api.example.com\")".into(),
                "Express(\"/a\")".into()
            ),
            (
                "a".into(),
                "Vhost(\"api.example.com\")".into(),
                "Express(\"/a/*\")".into()
            ),
            (
                "c".into(),
                "Vhost(\"api.example.com\")".into(),
                "Regex(\"^/c[0-9]+$\")".into()
            ),
            ("b".into(), "Any".into(), "Express(\"/b\")".into()),
            ("d".into(), "Any".into(), "Express(\"*\")".into()),
            (
                "c".into(),
                "Regex(\"^x\\\\.\")".into(),
                "Express(\"*\")".into()
            ),
        ]
    );
    assert_eq!(routes[0].methods, ["GET", "POST"]);
    assert_eq!(routes[0].scopes, ["read", "write"]);
    assert!(routes[3].methods.is_empty());
    assert_eq!(routes[2].methods, ["PUT"]);
    assert!(routes.iter().all(|r| r.pipeline == Some(0)));
}

#[test]
fn legacy_singular_forms_are_read() {
    let text = "http: {port: 8080}\nserviceEndpoints: {b: {url: 'http://b'}}\npolicies: [proxy]\napiEndpoint:\n  path: /x\npipeline:\n  apiEndpoint: '0'\n  policy:\n    proxy:\n      action: {serviceEndpoint: b}\n";
    let l = ok(text);
    let routes = &l.model.express[0].routes;
    assert_eq!(routes.len(), 1);
    assert_eq!(routes[0].api_endpoint, "0");
    assert_eq!(routes[0].pipeline, Some(0));
    assert_eq!(l.model.pipelines[0].name, "0");
    assert_eq!(l.model.pipelines[0].steps.len(), 1);
}

#[test]
fn proxy_options_merge_in_express_gateway_order() {
    let text = format!(
        "{BASE}serviceEndpoints:\n  b:\n    urls: ['http://one', 'http://two']\n    proxyOptions: {{changeOrigin: false, timeout: 5000}}\n  c:\n    url: http://c\napiEndpoints:\n  e: {{path: /e}}\n  f: {{path: /f}}\n  g: {{path: /g}}\npipelines:\n  p:\n    apiEndpoints: [e]\n    policies:\n      - proxy:\n          - action:\n              serviceEndpoint: b\n              changeOrigin: true\n              stripPath: true\n              xfwd: true\n              proxyOptions: {{headers: {{x-a: '1'}}, timeout: 7000}}\n  q:\n    apiEndpoints: [f]\n    policies:\n      - proxy: {{action: {{serviceEndpoint: c}}}}\n  r:\n    apiEndpoints: [g]\n    policies:\n      - proxy:\n"
    )
    .replace("serviceEndpoints:\n  b:\n    url: 'http://backend:81/base'\n", "");
    let l = ok(&text);
    let proxy = |i: usize| match &l.model.pipelines[i].steps[0].policy {
        PolicySpec::Proxy(p) => p.clone(),
        other => panic!("{other:?}"),
    };
    let p = proxy(0);
    // serviceEndpoint.proxyOptions overrides the action; the deprecated proxyOptions come last.
    assert!(!p.change_origin);
    assert_eq!(p.timeout_ms, Some(7000));
    assert_eq!(p.path, PathRewrite::Strip);
    assert!(p.forwarded_headers && p.request_id_header);
    assert_eq!(p.headers, [("x-a".to_string(), "1".to_string())]);
    let EndpointChoice::Service { endpoint } = p.endpoint else {
        panic!()
    };
    assert_eq!(
        l.model.endpoints[endpoint].kind,
        mgw_runtime::model::EndpointKind::LoadBalance
    );
    assert_eq!(
        l.model.endpoints[endpoint].urls,
        ["http://one", "http://two"]
    );
    let q = proxy(1);
    assert!(q.change_origin && !q.forwarded_headers);
    assert_eq!(q.path, PathRewrite::Keep);
    assert_eq!(proxy(2).endpoint, EndpointChoice::Missing);
    assert!(
        l.warnings.iter().any(|w| w.message.contains("deprecated")),
        "{:?}",
        l.warnings
    );
    assert!(l
        .warnings
        .iter()
        .any(|w| w.message.contains("answers every request 502")));
}

#[test]
fn cors_defaults_and_origin_forms() {
    let text = format!(
        "{BASE}pipelines:\n  p:\n    apiEndpoints: []\n    policies:\n      - cors:\n      - cors: {{action: {{origin: 'https://a', methods: 'GET, POST', credentials: true, maxAge: 10, optionsSuccessStatus: 200}}}}\n      - cors: [{{action: {{origin: ['https://a', 'https://b'], allowedHeaders: [x-a]}}}}, {{action: {{origin: true}}}}, {{action: {{origin: false}}}}]\n"
    );
    let l = ok(&text);
    let cors: Vec<CorsSpec> = l.model.pipelines[0]
        .steps
        .iter()
        .map(|s| match &s.policy {
            PolicySpec::Cors(c) => c.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(cors[0].origin, CorsOrigin::Any);
    assert_eq!(cors[0].methods, CORS_DEFAULT_METHODS);
    assert_eq!(cors[0].preflight_status, 204);
    assert_eq!(cors[1].origin, CorsOrigin::Fixed("https://a".into()));
    assert_eq!(cors[1].methods, ["GET, POST"]);
    assert!(cors[1].credentials);
    assert_eq!((cors[1].max_age, cors[1].preflight_status), (Some(10), 200));
    assert!(matches!(&cors[2].origin, CorsOrigin::List(l) if l.len() == 2));
    assert_eq!(
        cors[2].allowed_headers.as_deref(),
        Some(&["x-a".to_string()][..])
    );
    assert_eq!(cors[3].origin, CorsOrigin::Reflect);
    assert_eq!(cors[4].origin, CorsOrigin::Disabled);
}

use mgw_runtime::policies::cors::CorsSpec;
use policies::CORS_DEFAULT_METHODS;

#[test]
fn conditions_terminate_log_and_transformers() {
    let text = format!(
        "{BASE}pipelines:\n  p:\n    apiEndpoints: []\n    policies:\n      - terminate:\n          - condition:\n              name: allOf\n              conditions:\n                - {{name: pathExact, path: '/a?x=1'}}\n                - {{name: not, condition: {{name: method, methods: [GET, POST]}}}}\n                - {{name: oneOf, conditions: [{{name: pathMatch, pattern: '^/a'}}, {{name: hostMatch, pattern: '*.com'}}]}}\n                - {{name: anonymous}}\n      - terminate: {{action: {{statusCode: 401, message: Unauthorized}}}}\n      - log: {{action: {{message: '${{req.method}} ${{req.originalUrl}}'}}}}\n      - request-transformer: {{action: {{headers: {{add: {{x-a: \"'v'\"}}, remove: [x-b]}}}}}}\n      - response-transformer: {{action: {{headers: {{add: {{WWW-Authenticate: \"'Basic'\"}}}}}}}}\n      - headers: {{action: {{headersPrefix: 'x-', forwardHeaders: {{id: 'egContext.requestID'}}}}}}\n"
    );
    let l = ok(&text);
    let steps = &l.model.pipelines[0].steps;
    let Some(Condition::AllOf { conditions }) = &steps[0].condition else {
        panic!("{:?}", steps[0])
    };
    assert_eq!(conditions.len(), 4);
    assert_eq!(
        conditions[0],
        Condition::PathExact {
            path: "/a?x=1".into()
        }
    );
    assert_eq!(conditions[3], Condition::Anonymous);
    assert_eq!(
        steps[0].policy,
        PolicySpec::Terminate(TerminateSpec::default())
    );
    assert_eq!(
        steps[1].policy,
        PolicySpec::Terminate(TerminateSpec {
            status: 401,
            message: "Unauthorized".into()
        })
    );
    assert_eq!(
        steps[2].policy,
        PolicySpec::Log(LogSpec {
            message: "${req.method} ${req.originalUrl}".into()
        })
    );
    let PolicySpec::RequestTransformer(t) = &steps[3].policy else {
        panic!()
    };
    assert_eq!(
        t.headers.as_ref().unwrap().add,
        [("x-a".to_string(), "'v'".to_string())]
    );
    assert!(t.body.is_none());
    let PolicySpec::ResponseTransformer(t) = &steps[4].policy else {
        panic!()
    };
    assert_eq!(t.headers.as_ref().unwrap().add[0].1, "'Basic'");
    let PolicySpec::Headers(h) = &steps[5].policy else {
        panic!()
    };
    assert_eq!(h.prefix, "x-");
}

/// Body rules are translated (the runtime reads JSON and form bodies for them); a body
/// expression that cannot run is still a build error naming the field.
#[test]
fn transformer_bodies_are_translated() {
    let text = format!(
        "{BASE}pipelines:\n  p:\n    apiEndpoints: []\n    policies:\n      - request-transformer: {{action: {{body: {{add: {{who: 'req.ip'}}, remove: [secret]}}}}}}\n      - response-transformer: {{action: {{body: {{add: {{gw: \"'micro-gw'\"}}}}}}}}\n"
    );
    let l = ok(&text);
    let steps = &l.model.pipelines[0].steps;
    let PolicySpec::RequestTransformer(t) = &steps[0].policy else {
        panic!("{:?}", steps[0])
    };
    let body = t.body.as_ref().unwrap();
    assert_eq!(body.add, vec![("who".to_string(), "req.ip".to_string())]);
    assert_eq!(body.remove, vec!["secret".to_string()]);
    assert!(t.headers.is_none());
    let PolicySpec::ResponseTransformer(t) = &steps[1].policy else {
        panic!("{:?}", steps[1])
    };
    assert_eq!(t.body.as_ref().unwrap().add[0].1, "'micro-gw'");
    let text = format!(
        "{BASE}pipelines:\n  p:\n    apiEndpoints: []\n    policies:\n      - request-transformer: {{action: {{body: {{add: {{who: 'require(\"fs\")'}}}}}}}}\n"
    );
    let errs = errors(&text);
    assert!(
        errs.iter()
            .any(|e| e.contains("pipeline 'p'") && e.contains("require")),
        "{errs:?}"
    );
}

use mgw_runtime::model::Condition;
use mgw_runtime::policies::log::LogSpec;
use mgw_runtime::policies::terminate::TerminateSpec;

#[test]
fn refused_conditions_policies_and_references_name_file_line_and_pipeline() {
    let text = format!(
        "{BASE}apiEndpoints:\n  e: {{path: /e}}\npipelines:\n  p:\n    apiEndpoints: [e]\n    policies:\n      - expression: {{action: {{jscode: 'req.x = 1'}}}}\n      - terminate: {{condition: {{name: expression, expression: 'true'}}}}\n      - undeclared:\n      - proxy: {{action: {{serviceEndpoint: nowhere}}}}\n      - terminate: {{condition: {{name: tlsClientAuthenticated}}}}\n      - terminate: {{action: {{message: '${{SECRET}}'}}}}\n      - proxy: {{}}\n        cors: {{}}\n"
    );
    let errs = errors(&text);
    let find = |needle: &str| {
        errs.iter()
            .find(|e| e.contains(needle))
            .unwrap_or_else(|| panic!("{needle}: {errs:#?}"))
            .clone()
    };
    assert!(find("expression policy").starts_with(&format!("{FILE}:13:")));
    assert!(find("\"req.x = 1\"").contains("pipeline 'p'"));
    assert!(find("condition expression").starts_with(&format!("{FILE}:14:")));
    assert!(find("POLICY_NOT_DECLARED").contains("'undeclared'"));
    assert!(find("'nowhere'").starts_with(&format!("{FILE}:16:")));
    find("tlsClientAuthenticated is not supported");
    find("${SECRET}");
    find("has 2 keys (proxy, cors)");
}

#[test]
fn unsupported_policies_are_one_line_each_or_kept_with_their_behaviour() {
    let text = format!(
        "{BASE}apiEndpoints:\n  e: {{path: /e}}\npipelines:\n  p:\n    apiEndpoints: [e]\n    policies:\n      - oauth2: [{{action: {{passThrough: true}}}}, {{action: {{}}}}]\n      - my-plugin:\n      - proxy: {{action: {{serviceEndpoint: b}}}}\n"
    );
    let errs = errors(&text);
    assert_eq!(errs.len(), 3, "{errs:#?}");
    assert!(
        errs[0].starts_with(&format!(
            "{FILE}:13: pipeline 'p': policy 'oauth2' is not supported yet"
        )),
        "{errs:#?}"
    );
    assert!(errs
        .iter()
        .all(|e| e.contains("--allow-unsupported") && !e.contains('\n')));
    let l = load_eg(&text, true).unwrap();
    assert_eq!(l.unsupported.len(), 3);
    let behaviours: Vec<UnsupportedBehaviour> = l.model.pipelines[0]
        .steps
        .iter()
        .filter_map(|s| match &s.policy {
            PolicySpec::Unsupported(u) => Some(u.behaviour),
            _ => None,
        })
        .collect();
    assert_eq!(
        behaviours,
        [
            UnsupportedBehaviour::NoCredentialAccepted { pass_through: true },
            UnsupportedBehaviour::NoCredentialAccepted {
                pass_through: false
            },
            UnsupportedBehaviour::Refuse,
        ]
    );
    assert!(l.unsupported[0].to_string().contains("continues anonymous"));
}

#[test]
fn rate_limit_takes_eg_defaults_and_warns_about_the_default_delay() {
    use mgw_runtime::policies::rate_limit::{KeyPart, RateAlgorithm};
    let text = format!(
        "{BASE}apiEndpoints:\n  e: {{path: /e}}\npipelines:\n  p:\n    apiEndpoints: [e]\n    policies:\n      - rate-limit:\n      - rate-limit: {{action: {{max: 3, windowMs: 1000, delayMs: 0, rateLimitBy: \"${{req.headers['x-key']}}\", statusCode: 503, message: slow down, skipFailedRequests: true, headers: false, algorithm: gcra, burst: 2}}}}\n      - proxy: {{action: {{serviceEndpoint: b}}}}\n"
    );
    let l = ok(&text);
    let specs: Vec<_> = l.model.pipelines[0]
        .steps
        .iter()
        .filter_map(|s| match &s.policy {
            PolicySpec::RateLimit(spec) => Some(spec.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(specs.len(), 2);
    let (d, c) = (&specs[0], &specs[1]);
    assert_eq!(
        (d.max, d.window_ms, d.delay_after, d.delay_ms),
        (5, 60_000, 1, 1000)
    );
    assert_eq!(d.key, vec![KeyPart::Ip]);
    assert_eq!(d.status, 429);
    assert!(d.headers);
    assert_eq!(
        (c.max, c.window_ms, c.delay_ms, c.status),
        (3, 1000, 0, 503)
    );
    assert_eq!(c.key, vec![KeyPart::Header("x-key".into())]);
    assert_eq!(c.message, "slow down");
    assert!(c.skip_failed && !c.skip_successful && !c.headers);
    assert_eq!((c.algorithm, c.burst), (RateAlgorithm::Gcra, 2));
    assert_ne!(d.scope, c.scope, "each step counts on its own");
    let warnings: Vec<String> = l.warnings.iter().map(ToString::to_string).collect();
    let delay: Vec<&String> = warnings
        .iter()
        .filter(|w| w.contains("delayMs: 0"))
        .collect();
    assert_eq!(delay.len(), 1, "{warnings:#?}");
    assert!(delay[0].starts_with(&format!("{FILE}:13:")), "{delay:?}");
}

#[test]
fn rate_limit_keys_other_than_the_known_forms_are_build_errors() {
    let text = format!(
        "{BASE}apiEndpoints:\n  e: {{path: /e}}\npipelines:\n  p:\n    apiEndpoints: [e]\n    policies:\n      - rate-limit:\n          action:\n            rateLimitBy: \"${{req.body.user}}\"\n      - rate-limit: {{action: {{windowMs: 0}}}}\n      - proxy: {{action: {{serviceEndpoint: b}}}}\n"
    );
    let errs = errors(&text);
    assert_eq!(errs.len(), 2, "{errs:#?}");
    assert!(errs[0].starts_with(&format!("{FILE}:15:")), "{errs:#?}");
    assert!(errs[0].contains("${req.body.user}") && errs[0].contains("${req.ip}"));
    assert!(errs[1].contains("windowMs must be at least 1"), "{errs:#?}");
}

#[test]
fn an_endpoint_named_by_two_pipelines_goes_to_the_last_with_a_warning() {
    let text = format!(
        "{BASE}apiEndpoints:\n  e: {{path: /e}}\n  unused: {{path: /u}}\npipelines:\n  first:\n    apiEndpoints: [e]\n    policies: [{{terminate: }}]\n  second:\n    apiEndpoints: [e, ghost]\n    policies: [{{proxy: {{action: {{serviceEndpoint: b}}}}}}]\n"
    );
    let l = ok(&text);
    let routes = &l.model.express[0].routes;
    assert_eq!(routes[0].pipeline, Some(1));
    assert_eq!(routes[1].pipeline, None);
    let warnings: Vec<String> = l.warnings.iter().map(ToString::to_string).collect();
    assert!(
        warnings.iter().any(|w| w.contains("'first' and 'second'")),
        "{warnings:#?}"
    );
    assert!(
        warnings.iter().any(|w| w.contains("'ghost'")),
        "{warnings:#?}"
    );
}

#[test]
fn variables_are_refused_where_the_build_must_know_the_value() {
    let text = format!(
        "{BASE}apiEndpoints:\n  e: {{path: '/${{PREFIX}}/x', host: '${{HOST:-a.com}}'}}\npipelines: {{}}\n"
    );
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(
        errs[0].contains("${PREFIX}") && errs[0].contains("write the value itself"),
        "{errs:?}"
    );
}

/// The kind: every string of a supported action, a condition or an endpoint (but `host`) is
/// compiled in, so a variable anywhere there is refused once, with its line.
#[test]
fn variables_anywhere_outside_settings_are_refused_once_each() {
    let text = format!(
        "{BASE}apiEndpoints:\n  e: {{path: /e, methods: '${{M}}', scopes: ['${{S}}'], host: '${{H:-a}}'}}\npipelines:\n  p:\n    apiEndpoints: [e]\n    policies:\n      - proxy: {{action: {{serviceEndpoint: b, headers: {{authorization: 'Bearer ${{TOKEN}}'}}}}}}\n      - cors: {{action: {{allowedHeaders: ['${{H1}}']}}}}\n      - terminate: {{condition: {{name: pathExact, path: '/${{P}}'}}, action: {{message: '${{MSG}}'}}}}\n      - jwt: {{action: {{secretOrPublicKey: '${{SECRET}}'}}}}\n"
    );
    let failed = load_eg(&text, true).unwrap_err();
    let errs: Vec<String> = failed
        .error
        .errors
        .iter()
        .map(ToString::to_string)
        .collect();
    for name in ["M", "S", "TOKEN", "H1", "P"] {
        let hits = errs
            .iter()
            .filter(|e| e.contains(&format!("${{{name}}}")))
            .count();
        assert_eq!(hits, 1, "{name}: {errs:#?}");
    }
    // The condition fails first, so the terminate action is not read; the host is a setting;
    // unsupported policies keep no parameters.
    assert!(
        !errs
            .iter()
            .any(|e| e.contains("${MSG}") || e.contains("${H:-a}") || e.contains("${SECRET}")),
        "{errs:#?}"
    );
    assert!(
        errs.iter()
            .any(|e| e.starts_with(&format!("{FILE}:13:")) && e.contains("${TOKEN}")),
        "{errs:#?}"
    );
}

#[test]
fn not_yaml_or_not_a_mapping_is_a_clear_error() {
    let errs = errors("http: [\n");
    assert!(
        errs[0].starts_with(FILE) && errs[0].contains("not valid YAML"),
        "{errs:?}"
    );
    let errs = errors("- a\n");
    assert!(
        errs[0].contains("Express Gateway configuration must be a mapping"),
        "{errs:?}"
    );
}

#[test]
fn mixed_projects_refuse_shared_ports_only_when_routes_could_collide() {
    let api = SourceFile {
        name: "api_definitions/pets.yaml".into(),
        text: "openapi: 3.0.0\ninfo: {title: Pets, version: '1'}\nx-wso2-basePath: /pets\nx-wso2-production-endpoints: {urls: ['http://a']}\npaths:\n  /x:\n    get: {}\n".into(),
    };
    let eg = |path: &str, port: &str| {
        source(&format!(
            "http:\n  port: {port}\nserviceEndpoints: {{b: {{url: 'http://b'}}}}\npolicies: [proxy]\napiEndpoints:\n  e: {{path: '{path}'}}\npipelines:\n  p:\n    apiEndpoints: [e]\n    policies: [{{proxy: {{action: {{serviceEndpoint: b}}}}}}]\n"
        ))
    };
    let ports = ConfPorts {
        file: "conf/micro-gw.toml".into(),
        http: Some((9090, Some(3))),
        https: Some((9095, None)),
        express_http: None,
        express_https: None,
    };
    let options = LoadOptions {
        allow_unsupported: false,
        ports: Some(ports.clone()),
        cors_default: None,
        policies: None,
        validation: Default::default(),
    };
    let load = |path: &str, port: &str, options: &LoadOptions| {
        load_project(
            "p",
            std::slice::from_ref(&api),
            Some(&eg(path, port)),
            options,
        )
    };
    // Same port (by default value), overlapping path: refused, naming both files and lines.
    let err = load("/pe*", "${EG_HTTP_PORT:-9090}", &options)
        .unwrap_err()
        .error
        .to_string();
    assert!(err.starts_with(&format!("{FILE}:2:")), "{err}");
    assert!(
        err.contains("conf/micro-gw.toml:3") && err.contains("api_definitions/pets.yaml"),
        "{err}"
    );
    // Same port, disjoint paths: served together.
    let l = load("/other/*", "9090", &options).unwrap();
    assert_eq!(l.model.apis.len(), 1);
    assert_eq!(
        l.model.express[0].routes[0].pipeline,
        Some(l.model.pipelines.len() - 1)
    );
    // Other port: fine; an override moves the EG listener away.
    assert!(load("/pets/*", "8080", &options).is_ok());
    let moved = LoadOptions {
        cors_default: None,
        policies: None,
        validation: Default::default(),
        allow_unsupported: false,
        ports: Some(ConfPorts {
            express_http: Some(0),
            ..ports
        }),
    };
    assert!(load("/pets/*", "9090", &moved).is_ok());
    // Plain HTTP on the WSO2 HTTPS port is refused whatever the paths.
    let err = load("/other", "9095", &options)
        .unwrap_err()
        .error
        .to_string();
    assert!(err.contains("cannot serve plain HTTP and TLS"), "{err}");
}

#[test]
fn overlap_follows_express_paths() {
    let e = |p: &str| PathPattern::Express(p.into());
    assert!(crate::loader::could_overlap(&e("/pets"), "/pets"));
    assert!(crate::loader::could_overlap(&e("/PETS/x"), "/pets"));
    assert!(crate::loader::could_overlap(&e("/pe*"), "/pets"));
    assert!(crate::loader::could_overlap(&e("*"), "/pets"));
    assert!(crate::loader::could_overlap(&e("/x"), "/"));
    assert!(!crate::loader::could_overlap(&e("/petsx"), "/pets"));
    assert!(!crate::loader::could_overlap(&e("/other/*"), "/pets"));
    assert!(crate::loader::could_overlap(
        &PathPattern::Regex("^/a".into()),
        "/pets"
    ));
}

/// Issue 12 item 5: Kargo's real configuration imports unchanged; the build lists its
/// unsupported steps one line each and, allowed, keeps them with their behaviour.
#[test]
fn kargo_configuration_translates() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/kargo");
    let text = std::fs::read_to_string(dir.join("gateway.config.yml")).unwrap();
    let system = std::fs::read_to_string(dir.join("system.config.yml")).unwrap();
    let src = ExpressSource {
        gateway: SourceFile {
            name: FILE.into(),
            text,
        },
        system: Some(SourceFile {
            name: "express-gateway/system.config.yml".into(),
            text: system,
        }),
    };
    // Every policy of Kargo's pipelines is built in: no --allow-unsupported needed; the
    // healthcheck and metrics plugins' routes come from system.config.yml.
    let strict = load_project("kargo", &[], Some(&src), &LoadOptions::default())
        .unwrap_or_else(|e| panic!("{}", e.error));
    assert!(strict.unsupported.is_empty());
    let eg = &strict.model.express[0];
    assert_eq!(eg.healthcheck.as_deref(), Some("/healthcheck"));
    assert_eq!(eg.metrics_path.as_deref(), Some("/metrics"));
    let jwt = strict
        .model
        .pipelines
        .iter()
        .flat_map(|p| &p.steps)
        .find_map(|s| match &s.policy {
            PolicySpec::Jwt(j) => Some(j),
            _ => None,
        })
        .unwrap();
    // The secret stays a setting, substituted when the gateway starts.
    assert_eq!(
        jwt.secret_or_public_key.as_deref(),
        Some("${EXPRESS_GATEWAY_KEY_SECRET}")
    );
    assert_eq!(jwt.audience.as_deref(), Some("${SUBDOMAIN}"));
    assert!(jwt.check_credential_existence && jwt.pass_through);
    let allowed = load_project(
        "kargo",
        &[],
        Some(&src),
        &LoadOptions {
            allow_unsupported: true,
            ports: None,
            cors_default: None,
            policies: None,
            validation: Default::default(),
        },
    )
    .unwrap();
    let eg = &allowed.model.express[0];
    assert_eq!(eg.http.as_ref().unwrap().port, "8080");
    assert_eq!(eg.routes.len(), 13);
    // Host groups: `express-gateway` (admin) first, then every `*` endpoint in order.
    assert_eq!(eg.routes[0].api_endpoint, "admin");
    assert!(matches!(&eg.routes[0].host, HostPattern::Vhost(h) if h == "express-gateway"));
    let order: Vec<&str> = eg.routes.iter().map(|r| r.api_endpoint.as_str()).collect();
    assert_eq!(
        order,
        [
            "admin",
            "prometheus",
            "wms",
            "wmts",
            "tms",
            "wfs",
            "wcs",
            "k2",
            "storage",
            "capture",
            "mapcache_wmts",
            "mapcache_tms",
            "mapcache_wms"
        ]
    );
    // The typo `hosts:` is a warning with a hint, not an error.
    assert!(allowed
        .warnings
        .iter()
        .any(|w| w.message.contains("'hosts'") && w.message.contains("did you mean 'host'")));
    // Every plugin of Kargo is built in now: the storage plugin's providers are settings.
    assert!(!allowed
        .warnings
        .iter()
        .any(|w| w.message.contains("plugins are not loaded")));
    let storage = eg.storage.as_ref().expect("the storage plugin");
    assert_eq!(storage.path, "/s3");
    let names: Vec<&str> = storage.providers.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["aws", "ovh", "scw"]);
    assert!(storage.providers[0].default && !storage.providers[1].default);
    assert_eq!(
        storage.providers[0].secret_access_key.as_deref(),
        Some("${AWS_S3_SECRET_ACCESS_KEY}")
    );
    assert_eq!(
        storage.providers[1].endpoint.as_deref(),
        Some("${OVH_S3_ENDPOINT}")
    );
    // The wms pipeline serves both wms and mapcache_wms.
    let wms = eg
        .routes
        .iter()
        .find(|r| r.api_endpoint == "wms")
        .unwrap()
        .pipeline;
    let mapcache = eg
        .routes
        .iter()
        .find(|r| r.api_endpoint == "mapcache_wms")
        .unwrap()
        .pipeline;
    assert_eq!(wms, mapcache);
    let steps: Vec<&str> = allowed.model.pipelines[wms.unwrap()]
        .steps
        .iter()
        .map(|s| s.policy.name())
        .collect();
    assert_eq!(
        steps,
        [
            "metrics",
            "cors",
            "basic-auth",
            "jwt",
            "jwt",
            "response-transformer",
            "terminate",
            "scopes",
            "proxy"
        ]
    );
    let capture = eg
        .routes
        .iter()
        .find(|r| r.api_endpoint == "capture")
        .unwrap()
        .pipeline
        .unwrap();
    let PolicySpec::Proxy(proxy) = &allowed.model.pipelines[capture]
        .steps
        .last()
        .unwrap()
        .policy
    else {
        panic!()
    };
    assert_eq!(
        (proxy.path, proxy.timeout_ms, proxy.change_origin),
        (PathRewrite::Keep, Some(120_000), true)
    );
}

/// Kargo's storage plugin: a secret written in the file is refused (it would be compiled in);
/// a provider without credentials is a warning; unknown aws-sdk options are named.
#[test]
fn storage_plugin_settings() {
    let system = |text: &str| {
        let doc = parse("express-gateway/system.config.yml", text).unwrap();
        let mut diags = Diagnostics::default();
        let settings = system_config(&doc, &mut diags, None);
        (settings, diags)
    };
    let (settings, diags) = system(
        "plugins:\n  storage:\n    endpointName: /files\n    providers:\n      local:\n        endpoint: http://127.0.0.1:4568\n        accessKeyId: S3RVER\n        secretAccessKey: ${S3_SECRET}\n        default: true\n        s3ForcePathStyle: true\n        buckets: [maps]\n        signatureVersion: v4\n        httpOptions: {timeout: 1500, connectTimeout: 100}\n      empty: {}\n",
    );
    let storage = settings.storage.unwrap();
    assert_eq!(storage.path, "/files");
    let local = &storage.providers[0];
    assert!(local.default && local.force_path_style);
    assert_eq!(local.timeout_ms, Some(1500));
    assert_eq!(storage.providers[1].timeout_ms, None);
    assert_eq!(local.buckets, ["maps"]);
    assert_eq!(local.access_key_id.as_deref(), Some("S3RVER"));
    let text = format!("{diags:?}");
    assert!(text.contains("signatureVersion"), "{text}");
    assert!(text.contains("httpOptions.connectTimeout"), "{text}");
    assert!(text.contains("'empty' has no accessKeyId"), "{text}");
    assert!(diags.is_ok(), "{text}");

    let (settings, diags) = system(
        "plugins:\n  storage:\n    providers:\n      aws:\n        accessKeyId: AKIA\n        secretAccessKey: ${S}\n        httpOptions: {timeout: soon}\n",
    );
    assert!(settings.storage.is_none());
    let text = format!("{diags:?}");
    assert!(
        !diags.is_ok()
            && text
                .contains("httpOptions.timeout of storage provider 'aws' must be a whole number"),
        "{text}"
    );

    let (settings, diags) = system(
        "plugins:\n  storage:\n    providers:\n      aws:\n        accessKeyId: AKIA\n        secretAccessKey: written-here\n",
    );
    assert!(settings.storage.is_none());
    let text = format!("{diags:?}");
    assert!(
        !diags.is_ok() && text.contains("would be compiled into the gateway"),
        "{text}"
    );
}

/// Issue 13: `oauth2-introspect` with EG's defaults; `endpoint` and `authorization_value` are
/// settings (`${VAR}` kept), a clear authorization value warns, a missing endpoint is refused.
#[test]
fn oauth2_introspect_translates_with_eg_defaults() {
    use mgw_runtime::policies::introspect::IntrospectSpec;
    let head = "http:\n  port: 8080\nserviceEndpoints:\n  b:\n    url: 'http://backend:81'\npolicies: [oauth2-introspect, proxy]\napiEndpoints:\n  e: {path: /e, scopes: [read]}\npipelines:\n  p:\n    apiEndpoints: [e]\n    policies:\n";
    let tail = "      - proxy: {action: {serviceEndpoint: b}}\n";
    let spec = |l: &crate::loader::Loaded| -> IntrospectSpec {
        l.model
            .pipelines
            .iter()
            .flat_map(|p| &p.steps)
            .find_map(|s| match &s.policy {
                PolicySpec::Introspect(i) => Some(i.clone()),
                _ => None,
            })
            .unwrap()
    };
    let l = ok(&format!(
        "{head}      - oauth2-introspect: {{action: {{endpoint: '${{AS}}/introspect', authorization_value: 'Basic ${{AS_CREDENTIALS}}'}}}}\n{tail}"
    ));
    assert!(l.unsupported.is_empty());
    assert_eq!(
        spec(&l),
        IntrospectSpec {
            endpoint: "${AS}/introspect".into(),
            authorization_value: Some("Basic ${AS_CREDENTIALS}".into()),
            timeout_ms: 10_000,
            ttl_seconds: 60,
            pass_through: false,
        }
    );
    assert!(!l
        .warnings
        .iter()
        .any(|w| w.message.contains("authorization_value")));
    let l = ok(&format!(
        "{head}      - oauth2-introspect: {{action: {{endpoint: 'http://as:1/i', authorization_value: 'Basic YXBpMTpzZWNyZXQ=', ttl: 5, timeout: 300, passThrough: true}}}}\n{tail}"
    ));
    let s = spec(&l);
    assert_eq!(
        (s.ttl_seconds, s.timeout_ms, s.pass_through),
        (5, 300, true)
    );
    assert!(l.warnings.iter().any(|w| w
        .message
        .contains("authorization_value is written in clear")));
    let bad = errors(&format!(
        "{head}      - oauth2-introspect: {{action: {{ttl: 5}}}}\n{tail}"
    ));
    assert!(bad.iter().any(|e| e.contains("needs endpoint")), "{bad:?}");
    let bad = errors(&format!(
        "{head}      - oauth2-introspect: {{action: {{endpoint: 'ftp://x/i', ttl: -1}}}}\n{tail}"
    ));
    assert!(
        bad.iter().any(|e| e.contains("not an http(s) URL")),
        "{bad:?}"
    );
    // `${VAR}` anywhere else in the action is refused, as for every supported policy.
    let bad = errors(&format!(
        "{head}      - oauth2-introspect: {{action: {{endpoint: 'http://as/i', ttl: '${{TTL}}'}}}}\n{tail}"
    ));
    assert!(!bad.is_empty());
}

fn store_of(system: &str) -> (Option<StoreMapping>, Vec<String>) {
    let src = ExpressSource {
        gateway: SourceFile {
            name: FILE.into(),
            text: "http: {port: 8080}\n".into(),
        },
        system: Some(SourceFile {
            name: "/etc/eg/system.config.yml".into(),
            text: system.into(),
        }),
    };
    let l = load_project("p", &[], Some(&src), &LoadOptions::default())
        .unwrap_or_else(|e| panic!("{}", e.error));
    let warnings = l.warnings.iter().map(|w| w.message.clone()).collect();
    (l.store, warnings)
}

/// Issue 13 item 1: `db.redis` of `system.config.yml` maps onto `[store]`.
#[test]
fn db_redis_maps_onto_the_store_settings() {
    // Kargo's own file (tests/fixtures copy).
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/kargo");
    let kargo = std::fs::read_to_string(dir.join("system.config.yml")).unwrap();
    let redis = |url: &str, password_env: &str, namespace: &str, ca: &str| StoreMapping::Redis {
        url: url.into(),
        password_env: password_env.into(),
        namespace: namespace.into(),
        ca: ca.into(),
    };
    assert_eq!(
        store_of(&kargo).0,
        Some(redis("redis://redis:6379", "", "EG", ""))
    );
    // emulate: the embedded store; EG's shipped `${EG_DB_EMULATE:-true}` decided at import.
    assert_eq!(
        store_of("db: {redis: {emulate: true, namespace: EG}}\n").0,
        Some(StoreMapping::Embedded)
    );
    let (store, warnings) = store_of(
        "db:\n  redis:\n    emulate: ${MGW_TEST_UNSET_EMULATE:-true}\n    namespace: EG\n",
    );
    assert_eq!(store, Some(StoreMapping::Embedded));
    assert!(warnings.iter().any(|w| w.contains("decided at import")));
    // Variables are kept; a password variable becomes redis_password_env; TLS with a CA.
    let (store, warnings) = store_of(
        "db:\n  redis:\n    host: ${REDIS_HOST}\n    port: 6380\n    db: 2\n    password: ${REDIS_PASSWORD}\n    namespace: kargo\n    tls: {caFile: certs/ca.pem}\n    sentinels: []\n",
    );
    assert_eq!(
        store,
        Some(redis(
            "rediss://${REDIS_HOST}:6380/2",
            "REDIS_PASSWORD",
            "kargo",
            "/etc/eg/certs/ca.pem"
        ))
    );
    assert!(
        warnings.iter().any(|w| w.contains("sentinels")),
        "{warnings:?}"
    );
    // A password in clear is URL-encoded into the URL, with a warning.
    let (store, warnings) = store_of("db: {redis: {host: h, password: 'p@ss', namespace: EG}}\n");
    assert_eq!(store, Some(redis("redis://:p%40ss@h:6379", "", "EG", "")));
    assert!(warnings.iter().any(|w| w.contains("written in clear")));
    // No db section: the project's store is left alone.
    assert_eq!(store_of("plugins: {}\n").0, None);
}

#[test]
fn json_schema_conditions_translate_and_need_the_validation_feature() {
    let text = format!(
        "{BASE}apiEndpoints:\n  e: {{path: /e}}\npipelines:\n  p:\n    apiEndpoints: [e]\n    policies:\n      - terminate:\n          - condition:\n              name: json-schema\n              logErrors: true\n              schema:\n                $id: person\n                type: object\n                required: [name]\n                properties: {{name: {{type: string, format: email}}}}\n            action: {{statusCode: 201}}\n      - proxy: {{action: {{serviceEndpoint: b}}}}\n"
    );
    let l = ok(&text);
    let Some(Condition::JsonSchema { schema, log_errors }) =
        &l.model.pipelines[0].steps[0].condition
    else {
        panic!("{:?}", l.model.pipelines[0].steps[0])
    };
    assert!(log_errors);
    assert_eq!(schema["$id"], "person");
    assert!(crate::codegen::runtime_features(&l.model).contains(&"validation"));
    // Without the condition, the project does not take the feature.
    let plain = ok(&format!(
        "{BASE}apiEndpoints:\n  e: {{path: /e}}\npipelines:\n  p:\n    apiEndpoints: [e]\n    policies:\n      - proxy: {{action: {{serviceEndpoint: b}}}}\n"
    ));
    assert!(!crate::codegen::runtime_features(&plain.model).contains(&"validation"));
}

#[test]
fn malformed_json_schemas_name_file_line_pipeline_and_policy() {
    let step = |condition: &str| {
        let text = format!(
            "{BASE}apiEndpoints:\n  e: {{path: /e}}\npipelines:\n  p:\n    apiEndpoints: [e]\n    policies:\n      - terminate:\n          - condition:\n{condition}\n"
        );
        let errs = errors(&text);
        assert_eq!(errs.len(), 1, "{errs:#?}");
        errs.into_iter().next().unwrap_or_default()
    };
    let bad_type = step("              name: json-schema\n              schema:\n                $id: s\n                properties:\n                  age: {type: int}");
    assert!(bad_type.starts_with(&format!("{FILE}:19:")), "{bad_type}");
    assert!(
        bad_type.contains("pipeline 'p', policy 'terminate', condition json-schema"),
        "{bad_type}"
    );
    assert!(bad_type.contains("#/properties/age/type"), "{bad_type}");
    let no_id = step("              name: json-schema\n              schema: {type: object}");
    assert!(no_id.contains("needs an `$id`"), "{no_id}");
    let format = step("              name: json-schema\n              schema: {$id: s, type: string, format: int32}");
    assert!(format.contains("unknown format \"int32\""), "{format}");
    let remote = step("              name: json-schema\n              schema: {$id: s, $ref: 'https://example.com/s.json'}");
    assert!(remote.contains("micro-gw does not"), "{remote}");
    let draft = step("              name: json-schema\n              schema: {$id: s, $schema: 'https://json-schema.org/draft/2020-12/schema'}");
    assert!(draft.contains("draft-07"), "{draft}");
    let nested = step(
        "              name: not\n              condition: {name: json-schema, schema: {$id: s}}",
    );
    assert!(
        nested.contains("only be a step's own condition"),
        "{nested}"
    );
    let missing = step("              name: json-schema\n              logErrors: yes");
    assert!(missing.contains("needs `schema`"), "{missing}");
}
