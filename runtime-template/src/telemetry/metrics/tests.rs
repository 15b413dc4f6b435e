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
fn a_request_ending_on_another_thread_leaves_the_in_flight_sum_whole() {
    let metrics = Metrics::with_workers(&model(), 2);
    std::thread::scope(|scope| {
        // Counted on a marked worker's own slot, with a plain store...
        let guard = scope
            .spawn(|| {
                crate::server::worker::set_index(1);
                metrics.in_flight()
            })
            .join()
            .unwrap();
        assert!(lines(&metrics).contains(&"mgw_requests_in_flight 1".to_string()));
        // ...and ended on this unmarked thread: its shared slot goes below zero.
        drop(guard);
    });
    assert!(lines(&metrics).contains(&"mgw_requests_in_flight 0".to_string()));
}

#[test]
fn in_flight_and_connection_gauges_fall_when_released() {
    let metrics = Metrics::new(&model());
    let gauge = metrics.connections("listener.http", false, "auto");
    let request = metrics.in_flight();
    let connection = GaugeGuard::open(gauge.local().unwrap());
    // The same labels give the same series.
    let again = GaugeGuard::open(
        metrics
            .connections("listener.http", false, "auto")
            .local()
            .unwrap(),
    );
    assert!(lines(&metrics).contains(
        &r#"mgw_connections_open{listener="listener.http",tls="false",protocol="auto"} 2"#
            .to_string()
    ));
    drop(again);
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

/// The text is what `prometheus-client`'s own `Family`, `Counter` and `Histogram` wrote for the
/// same requests (how the series were kept before the per-worker cells), line for line in any
/// order, with the requests recorded by three workers. The latencies are binary fractions of
/// a second so that both ways of summing them give the same `_sum`.
#[test]
fn the_text_is_the_crates_own_for_the_same_requests_from_three_workers() {
    use prometheus_client::metrics::counter::Counter;
    use prometheus_client::metrics::family::Family;
    use prometheus_client::metrics::histogram::Histogram;

    let elapsed = Duration::from_nanos(1_953_125); // 2^-9 s
    let upstream = Duration::from_nanos(3_906_250); // 2^-8 s
    let metrics = Metrics::with_workers(&model(), 3);
    std::thread::scope(|scope| {
        for worker in 0..3 {
            let metrics = &metrics;
            scope.spawn(move || {
                crate::server::worker::set_index(worker);
                for _ in 0..5 {
                    let mut ok = outcome(RouteKey::Wso2(0, 0), &Method::GET, 200);
                    ok.elapsed = elapsed;
                    ok.upstream_latency = Some(upstream);
                    metrics.record(ok);
                }
                let mut refused = outcome(RouteKey::Wso2(0, 0), &Method::POST, 502);
                refused.elapsed = elapsed;
                refused.upstream_failure = Some(UpstreamFailure::Refused);
                metrics.record(refused);
                let mut too_large = outcome(RouteKey::Unrouted, &Method::PUT, 431);
                too_large.elapsed = Duration::from_secs(20);
                metrics.record(too_large);
                metrics.auth(AuthScheme::KeyAuth, AuthOutcome::Failure);
                metrics.limit(LimitPolicy::Throttle, worker != 1);
            });
        }
    });

    // The same requests, counted the crate's way.
    let mut registry = Registry::default();
    let requests = Family::<Labels, Counter>::default();
    registry.register(
        "mgw_requests",
        "Requests answered, by API, route template, method and status class",
        requests.clone(),
    );
    fn histogram() -> Histogram {
        Histogram::new(LATENCY_BUCKETS)
    }
    let duration = Family::<Labels, Histogram, fn() -> Histogram>::new_with_constructor(histogram);
    registry.register_with_unit(
        "mgw_request_duration",
        "Time from a request's arrival to its response head, by API and route template",
        Unit::Seconds,
        duration.clone(),
    );
    let upstream_duration =
        Family::<Labels, Histogram, fn() -> Histogram>::new_with_constructor(histogram);
    registry.register_with_unit(
        "mgw_upstream_duration",
        "Time an upstream took to its response head, by API and route template",
        Unit::Seconds,
        upstream_duration.clone(),
    );
    let upstream_errors = Family::<Labels, Counter>::default();
    registry.register(
        "mgw_upstream_errors",
        "Requests no upstream answered, by API, route template and kind (refused, timeout, reset, tls, other)",
        upstream_errors.clone(),
    );
    let client_errors = Family::<Labels, Counter>::default();
    registry.register(
        "mgw_client_errors",
        "Requests the gateway refused for the client's own error (400, 408, 413, 414, 431), by status",
        client_errors.clone(),
    );
    let auth = Family::<Labels, Counter>::default();
    registry.register(
        "mgw_auth",
        "Authentication step outcomes (success, failure, anonymous), by scheme",
        auth.clone(),
    );
    let limits = Family::<Labels, Counter>::default();
    registry.register(
        "mgw_rate_limit_decisions",
        "Rate-limit and throttling decisions (admitted, refused), by policy",
        limits.clone(),
    );
    registry.register(
        "mgw_requests_in_flight",
        "Requests being served (arrived, response head not yet sent)",
        <Gauge>::default(),
    );
    let open = Family::<Labels, Gauge>::default();
    registry.register(
        "mgw_connections_open",
        "Open client connections, by listener, TLS and protocol",
        open.clone(),
    );
    // One connection open on one listener, counted by one worker; the other has none.
    let _ = metrics.connections("listener.https", true, "h2");
    let open_here = metrics.connections("listener.http", false, "auto");
    let _connection = GaugeGuard::open(open_here.local().unwrap());
    let _ = open.get_or_create(&vec![
        ("listener", "listener.https".to_string()),
        ("tls", "true".to_string()),
        ("protocol", "h2".to_string()),
    ]);
    open.get_or_create(&vec![
        ("listener", "listener.http".to_string()),
        ("tls", "false".to_string()),
        ("protocol", "auto".to_string()),
    ])
    .inc();
    registry.register(
        "mgw_build",
        "The gateway's runtime version, model format and project",
        Info::new(vec![
            ("version", crate::VERSION.to_string()),
            ("model_format", MODEL_FORMAT.to_string()),
            ("project", "shop".to_string()),
        ]),
    );
    let labels = |pairs: &[(&'static str, &str)]| -> Labels {
        pairs.iter().map(|(k, v)| (*k, v.to_string())).collect()
    };
    let route = [("api", "petstore"), ("template", "/petstore/v1/pets/{id}")];
    let unrouted = [("api", ""), ("template", UNROUTED)];
    for _ in 0..3 {
        for _ in 0..5 {
            let get = labels(&[route[0], route[1], ("method", "GET"), ("class", "2xx")]);
            requests.get_or_create(&get).inc();
            duration
                .get_or_create(&labels(&route))
                .observe(elapsed.as_secs_f64());
            upstream_duration
                .get_or_create(&labels(&route))
                .observe(upstream.as_secs_f64());
        }
        let post = labels(&[route[0], route[1], ("method", "POST"), ("class", "5xx")]);
        requests.get_or_create(&post).inc();
        duration
            .get_or_create(&labels(&route))
            .observe(elapsed.as_secs_f64());
        let refused = labels(&[route[0], route[1], ("kind", "refused")]);
        upstream_errors.get_or_create(&refused).inc();
        let put = labels(&[
            unrouted[0],
            unrouted[1],
            ("method", "PUT"),
            ("class", "4xx"),
        ]);
        requests.get_or_create(&put).inc();
        duration.get_or_create(&labels(&unrouted)).observe(20.0);
        client_errors
            .get_or_create(&labels(&[("status", "431")]))
            .inc();
        auth.get_or_create(&labels(&[("scheme", "key-auth"), ("outcome", "failure")]))
            .inc();
    }
    for decision in ["admitted", "admitted", "refused"] {
        limits
            .get_or_create(&labels(&[("policy", "throttle"), ("decision", decision)]))
            .inc();
    }
    let mut expected = String::new();
    prometheus_client::encoding::text::encode(&mut expected, &registry).unwrap();

    let mut got = lines(&metrics);
    let mut expected: Vec<String> = expected.lines().map(str::to_string).collect();
    assert_eq!(got.last(), expected.last());
    got.sort();
    expected.sort();
    assert_eq!(got, expected);
}

/// The cells' bucket bounds are the exposed ones, and a request's cells are its worker's.
#[test]
fn bucket_bounds_match_and_each_worker_counts_apart() {
    for (nanos, seconds) in cells::LATENCY_BUCKET_NANOS.iter().zip(LATENCY_BUCKETS) {
        assert_eq!(
            Duration::from_nanos(*nanos),
            Duration::from_secs_f64(seconds)
        );
    }
    let metrics = Metrics::with_workers(&model(), 2);
    std::thread::scope(|scope| {
        for worker in 0..2 {
            let metrics = &metrics;
            scope.spawn(move || {
                crate::server::worker::set_index(worker);
                metrics.record(outcome(RouteKey::Wso2(0, 0), &Method::GET, 200));
            });
        }
    });
    let series = &metrics.cells.routes[metrics
        .routes
        .get(RouteRef::Wso2 {
            api: 0,
            resource: 0,
        })
        .copied()
        .unwrap()];
    let per_worker: Vec<u64> = series
        .each()
        .map(|counts| counts.requests[0][1].load(Ordering::Relaxed))
        .collect();
    assert_eq!(per_worker, [1, 1]);
    let first = series.each().next().unwrap() as *const RouteCounts as usize;
    let second = series.each().nth(1).unwrap() as *const RouteCounts as usize;
    assert_eq!(first % 128, 0);
    assert!(first.abs_diff(second) >= 128);
}

/// Two resources of one API on one path (GET and POST) share one series, as their label sets
/// are the same.
#[test]
fn routes_with_the_same_labels_share_one_series() {
    let mut model = model();
    let resource: crate::model::Resource = serde_json::from_value(serde_json::json!(
        {"method": "POST", "path": "/pets/{id}", "pipeline": 0}
    ))
    .expect("a resource");
    model.apis[0].resources.push(resource);
    let metrics = Metrics::new(&model);
    metrics.record(outcome(RouteKey::Wso2(0, 0), &Method::GET, 200));
    metrics.record(outcome(RouteKey::Wso2(0, 1), &Method::GET, 200));
    let text = lines(&metrics);
    let count =
        r#"mgw_request_duration_seconds_count{api="petstore",template="/petstore/v1/pets/{id}"}"#;
    assert_eq!(
        text.iter().filter(|l| l.starts_with(count)).count(),
        1,
        "{text:#?}"
    );
    assert!(text.contains(&format!("{count} 2")), "{text:#?}");
}
