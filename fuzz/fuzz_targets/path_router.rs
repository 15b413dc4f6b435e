//! Request path normalisation and routing. `normalise` must be idempotent and leave no merged
//! slashes or dot segments; the router must answer any path without panicking.
#![no_main]

use std::sync::OnceLock;

use http::Method;
use libfuzzer_sys::fuzz_target;
use mgw_runtime::model::{
    Api, Endpoint, EndpointKind, Environment, GatewayModel, Resource, MODEL_FORMAT,
};
use mgw_runtime::path::normalise;
use mgw_runtime::router::{Match, Router};

fn api(name: &str, base_path: &str, resources: &[(&str, &str)]) -> Api {
    Api {
        id: format!("api_{name}"),
        name: name.into(),
        version: "1".into(),
        base_path: base_path.into(),
        source: format!("{name}.yaml"),
        resources: resources
            .iter()
            .map(|(method, path)| Resource {
                method: (*method).into(),
                path: (*path).into(),
                operation_id: None,
                production: Some(0),
                sandbox: None,
                // Routing does not look at security.
                security: None,
                pipeline: 0,
            })
            .collect(),
        allow_encoded_slash: false,
    }
}

fn fixture() -> &'static (GatewayModel, Router) {
    static FIXTURE: OnceLock<(GatewayModel, Router)> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let model = GatewayModel {
            format: MODEL_FORMAT,
            project: "fuzz".into(),
            apis: vec![
                // A root API: `/` itself.
                api("root", "/", &[("GET", "/"), ("POST", "/")]),
                api(
                    "pets",
                    "/petstore/v1",
                    &[
                        ("GET", "/pet/{id}"),
                        ("POST", "/pet/{id}"),
                        ("GET", "/pet/findByStatus"),
                        ("POST", "/pet"),
                        ("GET", "/store/order/{orderId}/"),
                    ],
                ),
                // A catch-all.
                api("wild", "/wild", &[("GET", "/*"), ("POST", "/*")]),
            ],
            endpoints: vec![Endpoint {
                name: "fuzz".into(),
                environment: Environment::Production,
                kind: EndpointKind::Http,
                urls: vec!["http://127.0.0.1:9".into()],
                timeout_ms: 1_000,
            }],
            pipelines: vec![],
            express: vec![],
        };
        let router = Router::build(&model).unwrap_or_else(|_| panic!("the fixture model routes"));
        (model, router)
    })
}

fn route(path: &str) {
    let (model, router) = fixture();
    for method in [Method::GET, Method::POST, Method::HEAD, Method::DELETE] {
        if let Match::Found(id) = router.lookup(&method, path) {
            let route = router.route(id);
            let api = &model.apis[route.api];
            assert!(route.resource < api.resources.len());
            // The remainder is a tail of the path.
            assert!(path.ends_with(route.remainder(path)));
            if api.base_path != "/" {
                assert!(
                    path.as_bytes().starts_with(api.base_path.as_bytes()),
                    "{path:?} routed to API {:?}",
                    api.base_path
                );
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    // Lookup must not panic on any string, canonical or not.
    route(raw);
    let Ok(once) = normalise(raw) else {
        return;
    };
    let path = once.path.as_ref();
    assert!(path.starts_with('/'), "{raw:?} -> {path:?}");
    assert!(!path.contains("//"), "{raw:?} -> {path:?}");
    assert!(
        !path
            .split('/')
            .any(|segment| segment == "." || segment == ".."),
        "{raw:?} -> {path:?} keeps a dot segment"
    );
    // Normalising only decodes escapes of ASCII characters: any other character it returns
    // was in the request as it is.
    assert!(
        path.chars().all(|c| c.is_ascii() || raw.contains(c)),
        "{raw:?} -> {path:?} has characters the request did not"
    );
    let twice = normalise(path)
        .unwrap_or_else(|err| panic!("{raw:?} -> {path:?}, which normalises to an error: {err}"));
    assert_eq!(twice.path, path, "normalising {raw:?} twice changes it");
    // `encoded_slash` describes the raw path (a `%2F` segment may be removed by a later `..`),
    // so it may drop on the second pass, but a kept `%2F` is always reported.
    assert!(
        once.encoded_slash || !path.contains("%2F"),
        "{raw:?} -> {path:?} keeps an unreported %2F"
    );
    assert!(
        !twice.encoded_slash || once.encoded_slash,
        "{raw:?}: encoded_slash appears on the second pass"
    );
    route(path);
});
