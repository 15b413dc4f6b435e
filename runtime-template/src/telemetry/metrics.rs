//! The gateway's Prometheus series (`[metrics]` in `conf/micro-gw.toml`; reference in
//! docs/operations.md), kept with the `prometheus-client` crate and encoded as OpenMetrics
//! text.
//!
//! **Label values come from the model only**: API names, route templates, endpoint names,
//! policy names, and fixed sets (method, status class, error kind). Raw paths, query strings,
//! hosts and credentials never become labels, so the number of series is bounded by the model
//! whatever clients send. A request no route serves is counted under [`UNROUTED`].
//!
//! **No lock and no shared cache line per request.** Every label set a request can touch is
//! known from its route, so each distinct (API, route template) has a series made at
//! start-up, and each worker counts in cells of its own ([`cells`]): a request increments a
//! few atomics on lines only its worker writes (no `Family` map, no histogram mutex), and a
//! scrape adds the workers' cells up. Series appear when first used, so an unused method or
//! status class adds no line to `/metrics`. The text is `prometheus-client`'s encoder's, as
//! when the crate's own `Family` kept these series.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::{Method, StatusCode};
use prometheus_client::encoding::{EncodeMetric, MetricEncoder};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::info::Info;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use crate::access_log::{RouteRef, RouteTable};
use crate::model::{GatewayModel, PolicySpec, MODEL_FORMAT};
use crate::server::worker::{self, PerCore};

mod cells;

use cells::{Cells, GatewayCounts, RouteCounts, RouteSeries, View};

/// A series' labels: fixed names, values from the model or from fixed sets.
pub type Labels = Vec<(&'static str, String)>;

/// The `template` label of requests that no route serves (404s, malformed paths, framing
/// errors caught before routing).
pub const UNROUTED: &str = "(unrouted)";

/// The `method` label values; any other method counts as `other`.
pub const METHODS: [&str; 8] = [
    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "other",
];

/// The `class` label values (status classes).
pub const STATUS_CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// Statuses the gateway answers for a client's own error, counted in
/// `mgw_client_errors_total{status}`: bad framing or path, body too slow, body too large,
/// request target too long, headers too large.
pub const CLIENT_ERROR_STATUSES: [u16; 5] = [400, 408, 413, 414, 431];

/// Upper bounds (seconds) of the latency histograms' buckets: 1 ms to 10 s.
pub const LATENCY_BUCKETS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Why the gateway could not get a response head from an upstream (`kind` label of
/// `mgw_upstream_errors_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamFailure {
    /// The connection was refused or could not be made (no listener, no route, DNS).
    Refused,
    /// The endpoint's deadline passed (connecting or waiting for the head).
    Timeout,
    /// The upstream closed or reset the connection before a complete head.
    Reset,
    /// The TLS handshake with the upstream failed (certificate, protocol).
    Tls,
    /// Anything else (a malformed response, an unusable URL).
    Other,
}

impl UpstreamFailure {
    /// Every kind, in label order.
    pub const ALL: [Self; 5] = [
        Self::Refused,
        Self::Timeout,
        Self::Reset,
        Self::Tls,
        Self::Other,
    ];

    /// The `kind` label value.
    pub fn label(self) -> &'static str {
        match self {
            Self::Refused => "refused",
            Self::Timeout => "timeout",
            Self::Reset => "reset",
            Self::Tls => "tls",
            Self::Other => "other",
        }
    }
}

/// The `scheme` label of `mgw_auth_total`: the credential a step checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthScheme {
    /// WSO2 OAuth2 access token (a signed JWT or an introspected opaque token).
    Oauth2,
    /// WSO2 API key.
    Apikey,
    /// WSO2 basic authentication.
    Basic,
    /// A WSO2 resource that accepts several schemes, when none was verified.
    Any,
    /// Express Gateway `jwt`.
    Jwt,
    /// Express Gateway `key-auth`.
    KeyAuth,
    /// Express Gateway `basic-auth`.
    BasicAuth,
    /// Express Gateway `oauth2-introspect`.
    Oauth2Introspect,
}

impl AuthScheme {
    const COUNT: usize = Self::ALL.len();

    /// Every scheme, in index order.
    const ALL: [Self; 8] = [
        Self::Oauth2,
        Self::Apikey,
        Self::Basic,
        Self::Any,
        Self::Jwt,
        Self::KeyAuth,
        Self::BasicAuth,
        Self::Oauth2Introspect,
    ];

    fn index(self) -> usize {
        self as usize
    }

    /// The `scheme` label value.
    pub fn label(self) -> &'static str {
        match self {
            Self::Oauth2 => "oauth2",
            Self::Apikey => "apikey",
            Self::Basic => "basic",
            Self::Any => "any",
            Self::Jwt => "jwt",
            Self::KeyAuth => "key-auth",
            Self::BasicAuth => "basic-auth",
            Self::Oauth2Introspect => "oauth2-introspect",
        }
    }
}

/// The `outcome` label of `mgw_auth_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthOutcome {
    /// A credential was verified.
    Success,
    /// The request was refused (no credential, or a bad one).
    Failure,
    /// The request went on without a credential (WSO2 `optional`, EG `passThrough`).
    Anonymous,
}

impl AuthOutcome {
    const ALL: [Self; 3] = [Self::Success, Self::Failure, Self::Anonymous];

    fn label(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
            Self::Anonymous => "anonymous",
        }
    }
}

/// The `policy` label of `mgw_rate_limit_decisions_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitPolicy {
    /// Express Gateway `rate-limit`.
    RateLimit,
    /// WSO2 throttling tiers.
    Throttle,
}

impl LimitPolicy {
    fn label(self) -> &'static str {
        match self {
            Self::RateLimit => "rate-limit",
            Self::Throttle => "throttle",
        }
    }
}

/// What telemetry a pipeline step feeds, decided once per step at start-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepTelemetry {
    /// Nothing.
    None,
    /// An authentication step; `failure` is the scheme a refusal is counted under.
    Auth {
        /// The scheme of a refusal (a success is counted under the verified credential's).
        failure: AuthScheme,
    },
    /// A rate-limit decision.
    Limit(LimitPolicy),
}

impl StepTelemetry {
    /// The telemetry of a step running `policy`.
    pub fn of(policy: &PolicySpec) -> Self {
        use crate::model::AuthScheme as Model;
        match policy {
            PolicySpec::Authenticate(spec) => {
                let mut schemes = spec.security.schemes.iter().map(|s| match s {
                    Model::Oauth2 => AuthScheme::Oauth2,
                    Model::Basic => AuthScheme::Basic,
                    Model::ApiKey { .. } => AuthScheme::Apikey,
                });
                let failure = match (schemes.next(), schemes.next()) {
                    (Some(only), None) => only,
                    _ => AuthScheme::Any,
                };
                Self::Auth { failure }
            }
            PolicySpec::KeyAuth(_) => Self::Auth {
                failure: AuthScheme::KeyAuth,
            },
            PolicySpec::BasicAuth(_) => Self::Auth {
                failure: AuthScheme::BasicAuth,
            },
            PolicySpec::Jwt(_) => Self::Auth {
                failure: AuthScheme::Jwt,
            },
            PolicySpec::Introspect(_) => Self::Auth {
                failure: AuthScheme::Oauth2Introspect,
            },
            PolicySpec::RateLimit(_) => Self::Limit(LimitPolicy::RateLimit),
            PolicySpec::Throttle(_) => Self::Limit(LimitPolicy::Throttle),
            _ => Self::None,
        }
    }
}

/// Which route slot a request is counted in, found by the router (indexes into the model).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RouteKey {
    /// No route: a 404, a 405, a malformed path, a framing error.
    #[default]
    Unrouted,
    /// `GET /health`.
    Health,
    /// `GET /apikey`.
    ApiKey,
    /// A WSO2 resource: API index, resource index.
    Wso2(usize, usize),
    /// An Express Gateway route: configuration index, route index.
    Express(usize, usize),
}

/// One finished request, as the log phase hands it to [`Metrics::record`].
#[derive(Debug, Clone, Copy)]
pub struct Outcome<'a> {
    /// The route it was counted in.
    pub route: RouteKey,
    /// Its method.
    pub method: &'a Method,
    /// The response status.
    pub status: StatusCode,
    /// Time from arrival to the response head.
    pub elapsed: Duration,
    /// Time the upstream took to its response head, when one answered.
    pub upstream_latency: Option<Duration>,
    /// Why no upstream answered, when that is what happened.
    pub upstream_failure: Option<UpstreamFailure>,
}

/// Every series of the gateway, and the registry that encodes them.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// The request, latency, error, authentication and rate-limit series: per-worker cells,
    /// summed by the registry's views when encoded.
    cells: Arc<Cells>,
    /// The registered `mgw_requests_in_flight`: the sum of `in_flight_cores`, set at encoding.
    in_flight: Gauge,
    /// Requests in flight, counted by each worker in its own slot (no cache line shared by
    /// cores on the request path), summed when the metrics are encoded. A slot holds a
    /// two's-complement count (a slot may go below zero when a request ends on another
    /// thread than the one that counted it), added to with [`worker::add_relaxed`].
    in_flight_cores: PerCore<AtomicU64>,
    /// The `mgw_connections_open` series made so far (at start-up, one per listener and
    /// protocol).
    connections: Arc<std::sync::Mutex<Vec<(Labels, ConnectionGauge)>>>,
    /// How many per-worker counts a connection gauge has.
    workers: usize,
    /// Each route's index in `cells.routes`, in the access log's table of the model's routes.
    routes: RouteTable<usize>,
    health: usize,
    apikey: usize,
}

/// The index in [`Cells::routes`] of the series of requests no route serves.
const UNROUTED_SERIES: usize = 0;

impl Metrics {
    /// Registers every series and makes a slot for each route of `model`, with one set of
    /// cells per CPU ([`Metrics::with_workers`]).
    pub fn new(model: &GatewayModel) -> Self {
        Self::with_workers(
            model,
            std::thread::available_parallelism().map_or(1, usize::from),
        )
    }

    /// Registers every series and makes a slot for each route of `model`, with `workers`
    /// sets of cells for marked workers and as many shared ones ([`PerCore`]): `workers` is
    /// the thread-per-core workers' count, or the work-stealing runtime's threads (more
    /// threads than shared slots share them, which stays correct, only slower).
    pub fn with_workers(model: &GatewayModel, workers: usize) -> Self {
        // One series per distinct (API, template), the unrouted one first.
        let mut series: Vec<RouteSeries> = Vec::new();
        let mut known: HashMap<(String, String), usize> = HashMap::new();
        let mut add = |api: &str, template: String| -> usize {
            *known
                .entry((api.to_string(), template.clone()))
                .or_insert_with(|| {
                    series.push(RouteSeries::new(api.to_string(), template, workers));
                    series.len() - 1
                })
        };
        let unrouted = add("", UNROUTED.to_string());
        debug_assert_eq!(unrouted, UNROUTED_SERIES);
        let health = add("", crate::policies::health::PATH.to_string());
        let apikey = add("", crate::policies::apikey::PATH.to_string());
        let routes = RouteTable::new(model, &mut add);
        let cells = Arc::new(Cells {
            routes: series.into_boxed_slice(),
            gateway: PerCore::new(workers, GatewayCounts::default),
        });
        let view = |family| View::new(cells.clone(), family);

        let mut registry = Registry::default();
        registry.register(
            "mgw_requests",
            "Requests answered, by API, route template, method and status class",
            view(cells::Family::Requests),
        );
        registry.register_with_unit(
            "mgw_request_duration",
            "Time from a request's arrival to its response head, by API and route template",
            Unit::Seconds,
            view(cells::Family::Duration),
        );
        registry.register_with_unit(
            "mgw_upstream_duration",
            "Time an upstream took to its response head, by API and route template",
            Unit::Seconds,
            view(cells::Family::UpstreamDuration),
        );
        registry.register(
            "mgw_upstream_errors",
            "Requests no upstream answered, by API, route template and kind (refused, timeout, reset, tls, other)",
            view(cells::Family::UpstreamErrors),
        );
        registry.register(
            "mgw_client_errors",
            "Requests the gateway refused for the client's own error (400, 408, 413, 414, 431), by status",
            view(cells::Family::ClientErrors),
        );
        registry.register(
            "mgw_auth",
            "Authentication step outcomes (success, failure, anonymous), by scheme",
            view(cells::Family::Auth),
        );
        registry.register(
            "mgw_rate_limit_decisions",
            "Rate-limit and throttling decisions (admitted, refused), by policy",
            view(cells::Family::Limits),
        );
        let in_flight = Gauge::default();
        registry.register(
            "mgw_requests_in_flight",
            "Requests being served (arrived, response head not yet sent)",
            in_flight.clone(),
        );
        let connections = Arc::default();
        registry.register(
            "mgw_connections_open",
            "Open client connections, by listener, TLS and protocol",
            Connections(Arc::clone(&connections)),
        );
        registry.register(
            "mgw_build",
            "The gateway's runtime version, model format and project",
            Info::new(vec![
                ("version", crate::VERSION.to_string()),
                ("model_format", MODEL_FORMAT.to_string()),
                ("project", model.project.clone()),
            ]),
        );
        Self {
            registry,
            cells,
            in_flight,
            in_flight_cores: PerCore::new(workers, AtomicU64::default),
            connections,
            workers,
            routes,
            health,
            apikey,
        }
    }

    /// The calling worker's cells of `key`'s series (the unrouted series for an index the
    /// model does not have), and whether the calling thread is their only writer.
    fn route(&self, key: RouteKey) -> Option<(&RouteCounts, bool)> {
        let found = match key {
            RouteKey::Unrouted => None,
            RouteKey::Health => Some(self.health),
            RouteKey::ApiKey => Some(self.apikey),
            RouteKey::Wso2(api, resource) => {
                index_pair(api, resource).and_then(|(api, resource)| {
                    self.routes.get(RouteRef::Wso2 { api, resource }).copied()
                })
            }
            RouteKey::Express(config, route) => {
                index_pair(config, route).and_then(|(config, route)| {
                    self.routes
                        .get(RouteRef::Express { config, route })
                        .copied()
                })
            }
        };
        self.cells
            .routes
            .get(found.unwrap_or(UNROUTED_SERIES))?
            .local()
    }

    /// Counts one answered request (the log phase): a few relaxed additions on the calling
    /// worker's own cache lines (plain loads and stores on a marked worker's cells, which only
    /// it writes: [`worker::add_relaxed`]).
    pub fn record(&self, outcome: Outcome<'_>) {
        let Some((route, sole)) = self.route(outcome.route) else {
            return;
        };
        let method = method_index(outcome.method);
        let class = status_class(outcome.status);
        if let Some(cell) = route.requests.get(method).and_then(|m| m.get(class)) {
            worker::add_relaxed(cell, 1, sole);
        }
        route.duration.observe(outcome.elapsed, sole);
        if let Some(latency) = outcome.upstream_latency {
            route.upstream_duration.observe(latency, sole);
        } else if let Some(kind) = outcome.upstream_failure {
            let index = UpstreamFailure::ALL
                .iter()
                .position(|k| *k == kind)
                .unwrap_or(UpstreamFailure::ALL.len() - 1);
            if let Some(cell) = route.upstream_errors.get(index) {
                worker::add_relaxed(cell, 1, sole);
            }
        } else if let Some(index) = CLIENT_ERROR_STATUSES
            .iter()
            .position(|s| *s == outcome.status.as_u16())
        {
            // The gateway's own answer (no upstream answered): the client's error.
            let (counts, sole) = self.cells.gateway.local_sole();
            if let Some(cell) = counts.client_errors.get(index) {
                worker::add_relaxed(cell, 1, sole);
            }
        }
    }

    /// Counts an authentication step's outcome.
    pub fn auth(&self, scheme: AuthScheme, outcome: AuthOutcome) {
        let o = AuthOutcome::ALL
            .iter()
            .position(|x| *x == outcome)
            .unwrap_or(0);
        let (counts, sole) = self.cells.gateway.local_sole();
        if let Some(cell) = counts.auth.get(scheme.index()).and_then(|c| c.get(o)) {
            worker::add_relaxed(cell, 1, sole);
        }
    }

    /// Counts a rate-limit or throttling decision.
    pub fn limit(&self, policy: LimitPolicy, admitted: bool) {
        let p = match policy {
            LimitPolicy::RateLimit => 0,
            LimitPolicy::Throttle => 1,
        };
        let d = usize::from(!admitted);
        let (counts, sole) = self.cells.gateway.local_sole();
        if let Some(cell) = counts.limits.get(p).and_then(|c| c.get(d)) {
            worker::add_relaxed(cell, 1, sole);
        }
    }

    /// Counts a request as in flight until the returned guard is dropped (in the calling
    /// worker's slot: [`PerCore`]; with a plain load and store on a marked worker's own slot,
    /// which only it writes).
    pub fn in_flight(&self) -> InFlight<'_> {
        let (slot, sole) = self.in_flight_cores.local_sole();
        worker::add_relaxed(slot, 1, sole);
        InFlight(&self.in_flight_cores)
    }

    /// The open-connections gauge of one listener and protocol (resolved once per listener
    /// and protocol by the server; `listener` is the name of its port setting). The series is
    /// shown from then on, at 0 while no connection is open.
    pub fn connections(&self, listener: &str, tls: bool, protocol: &str) -> ConnectionGauge {
        let labels = vec![
            ("listener", listener.to_string()),
            ("tls", tls.to_string()),
            ("protocol", protocol.to_string()),
        ];
        let mut series = self
            .connections
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((_, gauge)) = series.iter().find(|(known, _)| *known == labels) {
            return gauge.clone();
        }
        let gauge = ConnectionGauge(
            (0..self.workers.max(1))
                .map(|_| Arc::new(OpenCount::default()))
                .collect(),
        );
        series.push((labels, gauge.clone()));
        gauge
    }

    /// Every series in the OpenMetrics text format (ends with `# EOF`).
    pub fn encode(&self) -> String {
        // The slots' two's-complement counts, added with wrapping: the sum of the requests
        // in flight, whatever each slot holds.
        let in_flight = self.in_flight_cores.iter().fold(0u64, |sum, slot| {
            sum.wrapping_add(slot.load(Ordering::Relaxed))
        });
        self.in_flight
            .set(i64::from_ne_bytes(in_flight.to_ne_bytes()));
        let mut text = String::with_capacity(16 * 1024);
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

/// The router's two indices as a [`RouteRef`]'s (`None` past `u32::MAX`, which no model reaches).
fn index_pair(outer: usize, inner: usize) -> Option<(u32, u32)> {
    Some((u32::try_from(outer).ok()?, u32::try_from(inner).ok()?))
}

/// A request in flight: when dropped, takes one off the slot of the thread that drops it
/// (the one that counted it, as a worker's requests end on its own thread; were it another,
/// the sum of the slots would still balance, and each slot would keep only the writers it
/// allows: its marked worker's plain stores, or atomic additions).
#[derive(Debug)]
pub struct InFlight<'a>(&'a PerCore<AtomicU64>);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        let (slot, sole) = self.0.local_sole();
        // Adding 2^64 - 1 wraps to one less.
        worker::add_relaxed(slot, u64::MAX, sole);
    }
}

/// One worker's count of one `mgw_connections_open` series. Aligned to 128 bytes, so that in
/// its `Arc` the count and the reference counts (which only its worker changes) sit on
/// cache lines of their own.
#[derive(Debug, Default)]
#[repr(align(128))]
struct OpenCount(AtomicI64);

/// An `mgw_connections_open` series: one count per worker, summed when encoded.
#[derive(Debug, Clone)]
pub struct ConnectionGauge(Arc<[Arc<OpenCount>]>);

impl ConnectionGauge {
    /// The calling worker's count ([`crate::server::worker::index`]), to open connections on.
    pub fn local(&self) -> Option<LocalGauge> {
        let slot = self
            .0
            .get(crate::server::worker::index() % self.0.len().max(1))?;
        Some(LocalGauge(Arc::clone(slot)))
    }

    fn sum(&self) -> i64 {
        self.0
            .iter()
            .map(|count| count.0.load(Ordering::Relaxed))
            .sum()
    }
}

/// One worker's count of a [`ConnectionGauge`]: what a connection is counted in.
#[derive(Debug, Clone)]
pub struct LocalGauge(Arc<OpenCount>);

/// The registered `mgw_connections_open` family.
#[derive(Debug)]
struct Connections(Arc<std::sync::Mutex<Vec<(Labels, ConnectionGauge)>>>);

impl EncodeMetric for Connections {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let series = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (labels, gauge) in series.iter() {
            encoder.encode_family(labels)?.encode_gauge(&gauge.sum())?;
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Gauge
    }

    fn is_empty(&self) -> bool {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .is_empty()
    }
}

/// Counts a connection as open until dropped (in the count it was opened on).
#[derive(Debug)]
pub struct GaugeGuard(LocalGauge);

impl GaugeGuard {
    /// Increments `gauge` until the guard is dropped.
    pub fn open(gauge: LocalGauge) -> Self {
        gauge.0 .0.fetch_add(1, Ordering::Relaxed);
        Self(gauge)
    }
}

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0 .0 .0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The index of `method` in [`METHODS`] (`other` for the rest).
fn method_index(method: &Method) -> usize {
    match method.as_str() {
        "GET" => 0,
        "HEAD" => 1,
        "POST" => 2,
        "PUT" => 3,
        "DELETE" => 4,
        "PATCH" => 5,
        "OPTIONS" => 6,
        _ => 7,
    }
}

/// The index of `status`'s class in [`STATUS_CLASSES`].
fn status_class(status: StatusCode) -> usize {
    usize::from(status.as_u16() / 100)
        .saturating_sub(1)
        .min(STATUS_CLASSES.len() - 1)
}

#[cfg(test)]
mod tests;
