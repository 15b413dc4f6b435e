use super::*;
use crate::model::GatewayModel;

/// A model of one WSO2 API with `GET /pets/{id}` under `/petstore/v1`.
fn model() -> GatewayModel {
    let mut model: GatewayModel = serde_json::from_value(serde_json::json!({
        "format": MODEL_FORMAT,
        "project": "shop",
        "apis": [],
        "endpoints": [],
    }))
    .expect("a model");
    let api: crate::model::Api = serde_json::from_value(serde_json::json!({
        "id": "petstore-1",
        "name": "petstore",
        "version": "1",
        "base_path": "/petstore/v1",
        "source": "api_definitions/petstore.yaml",
        "resources": [{"method": "GET", "path": "/pets/{id}", "pipeline": 0}],
    }))
    .expect("an API");
    model.apis.push(api);
    model
}

fn lines(metrics: &Metrics) -> Vec<String> {
    metrics.encode().lines().map(str::to_string).collect()
}

fn outcome(route: RouteKey, method: &Method, status: u16) -> Outcome<'_> {
    Outcome {
        route,
        method,
        status: StatusCode::from_u16(status).unwrap(),
        elapsed: Duration::from_millis(3),
        upstream_latency: None,
        upstream_failure: None,
    }
}

#[test]
fn a_request_is_counted_by_api_template_method_and_class() {
    let metrics = Metrics::new(&model());
    let mut ok = outcome(RouteKey::Wso2(0, 0), &Method::GET, 200);
    ok.upstream_latency = Some(Duration::from_millis(2));
    metrics.record(ok);
    metrics.record(ok);
    let text = lines(&metrics);
    assert!(
        text.contains(&r#"mgw_requests_total{api="petstore",template="/petstore/v1/pets/{id}",method="GET",class="2xx"} 2"#.to_string()),
        "{text:#?}"
    );
    assert!(text.iter().any(|l| l.starts_with(
        r#"mgw_upstream_duration_seconds_count{api="petstore",template="/petstore/v1/pets/{id}"} 2"#
    )));
    assert!(text
        .iter()
        .any(|l| l.starts_with("mgw_build_info{") && l.contains(r#"project="shop""#)));
    assert_eq!(text.last().map(String::as_str), Some("# EOF"));
}

#[test]
fn odd_methods_and_unknown_routes_stay_in_fixed_series() {
    let metrics = Metrics::new(&model());
    let before = lines(&metrics).len();
    let mut seen = None;
    for i in 0..500 {
        let method = Method::from_bytes(format!("M{i}").as_bytes()).unwrap();
        metrics.record(outcome(RouteKey::Unrouted, &method, 404));
        // An index the model does not have falls back to the unrouted slot.
        metrics.record(outcome(RouteKey::Wso2(7, i), &Method::GET, 404));
        metrics.record(outcome(RouteKey::Express(i, 0), &Method::GET, 404));
        let now = lines(&metrics).len();
        if let Some(seen) = seen {
            assert_eq!(now, seen, "the series grew with request {i}");
        }
        seen = Some(now);
    }
    let text = lines(&metrics);
    assert!(text.len() > before);
    assert!(text.contains(
        &r#"mgw_requests_total{api="",template="(unrouted)",method="other",class="4xx"} 500"#
            .to_string()
    ));
    assert!(text.contains(
        &r#"mgw_requests_total{api="",template="(unrouted)",method="GET",class="4xx"} 1000"#
            .to_string()
    ));
}

#[test]
fn upstream_failures_and_client_errors_are_counted_apart() {
    let metrics = Metrics::new(&model());
    let mut refused = outcome(RouteKey::Wso2(0, 0), &Method::GET, 502);
    refused.upstream_failure = Some(UpstreamFailure::Refused);
    metrics.record(refused);
    metrics.record(outcome(RouteKey::Unrouted, &Method::GET, 431));
    // A 400 from an upstream is the upstream's answer, not a client error of ours.
    let mut upstream_400 = outcome(RouteKey::Wso2(0, 0), &Method::GET, 400);
    upstream_400.upstream_latency = Some(Duration::from_millis(1));
    metrics.record(upstream_400);
    let text = lines(&metrics);
    assert!(text.contains(
        &r#"mgw_upstream_errors_total{api="petstore",template="/petstore/v1/pets/{id}",kind="refused"} 1"#
            .to_string()
    ), "{text:#?}");
    assert!(text.contains(&r#"mgw_client_errors_total{status="431"} 1"#.to_string()));
    assert!(!text.iter().any(|l| l.contains(r#"status="400""#)));
}

#[test]
fn auth_and_limit_decisions_have_fixed_labels() {
    let metrics = Metrics::new(&model());
    metrics.auth(AuthScheme::KeyAuth, AuthOutcome::Failure);
    metrics.auth(AuthScheme::Oauth2, AuthOutcome::Success);
    metrics.limit(LimitPolicy::RateLimit, false);
    metrics.limit(LimitPolicy::Throttle, true);
    let text = lines(&metrics);
    for line in [
        r#"mgw_auth_total{scheme="key-auth",outcome="failure"} 1"#,
        r#"mgw_auth_total{scheme="oauth2",outcome="success"} 1"#,
        r#"mgw_rate_limit_decisions_total{policy="rate-limit",decision="refused"} 1"#,
        r#"mgw_rate_limit_decisions_total{policy="throttle",decision="admitted"} 1"#,
    ] {
        assert!(
            text.contains(&line.to_string()),
            "{line} missing: {text:#?}"
        );
    }
}

#[test]
fn in_flight_and_connection_gauges_fall_when_released() {
    let metrics = Metrics::new(&model());
    let gauge = metrics.connections("listener.http", false, "auto");
    let request = metrics.in_flight();
    let connection = GaugeGuard::open(&gauge);
    assert!(lines(&metrics).contains(&"mgw_requests_in_flight 1".to_string()));
    drop((request, connection));
    let text = lines(&metrics);
    assert!(text.contains(&"mgw_requests_in_flight 0".to_string()));
    assert!(text.contains(
        &r#"mgw_connections_open{listener="listener.http",tls="false",protocol="auto"} 0"#
            .to_string()
    ));
}

#[test]
fn templates_join_base_path_and_resource_path() {
    assert_eq!(
        crate::model::route_template("/api/v1/", "/pets"),
        "/api/v1/pets"
    );
    assert_eq!(crate::model::route_template("/api", "pets"), "/api/pets");
    assert_eq!(crate::model::route_template("/api", "/"), "/api/");
    assert_eq!(crate::model::route_template("", ""), "/");
    assert_eq!(status_class(StatusCode::from_u16(599).unwrap()), 4);
    assert_eq!(status_class(StatusCode::CONTINUE), 0);
}
